"""Text data for the `encoder_head` family: a pretrained encoder, its cached embeddings, token tensors."""
