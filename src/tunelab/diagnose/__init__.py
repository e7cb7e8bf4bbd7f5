"""Diagnosis: rules that read a run folder and say what a careful practitioner would say."""
