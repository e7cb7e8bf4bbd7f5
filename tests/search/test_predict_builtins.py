"""`tunelab.predict` takes rows as a built-in data set's own files hold them, on miniature files
generated here: California's raw block-group columns and House Prices' categorical columns and `Id`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tunelab
from tunelab.config.load import load_experiment
from tunelab.data.builtins import CALIFORNIA_FEATURES, CALIFORNIA_RAW_COLUMNS


def _tune(tmp: Path, data: dict, hidden: int = 8) -> Path:
    out = tmp / f"run_{data['name']}"
    raw = {
        "name": f"api_{data['name']}",
        "data": data,
        "model": {"family": "mlp", "hidden_dims": [hidden]},
        "train": {"epochs": 2},
        "search": {"strategy": "grid", "space": {"train.lr": [0.01]}},
    }
    result = tunelab.tune(load_experiment(None, raw=raw), out=out, data_dir=str(tmp))
    assert result.test_metrics is not None
    return out


def _housing(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    households = rng.integers(50, 500, rows).astype(float)
    return pd.DataFrame(
        {
            "longitude": rng.uniform(-124, -114, rows),
            "latitude": rng.uniform(32, 42, rows),
            "housing_median_age": rng.integers(1, 52, rows).astype(float),
            "total_rooms": households * rng.uniform(3, 8, rows),
            "total_bedrooms": households * rng.uniform(0.8, 1.5, rows),
            "population": households * rng.uniform(1.5, 4, rows),
            "households": households,
            "median_income": rng.uniform(0.5, 15, rows),
            "median_house_value": rng.uniform(15_000, 500_000, rows),
            "ocean_proximity": "INLAND",
        }
    )


def _derived(raw_rows: pd.DataFrame) -> pd.DataFrame:
    """scikit-learn's eight California features, computed here independently of the loader."""
    lon, lat, age, rooms, beds, pop, hh, inc = raw_rows[CALIFORNIA_RAW_COLUMNS].to_numpy().T
    features = np.stack([inc, age, rooms / hh, beds / hh, pop, pop / hh, lat, lon], axis=1)
    return pd.DataFrame(features, columns=CALIFORNIA_FEATURES)


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_california_rows_as_the_file_holds_them_predict_like_the_derived_features(tmp_path):
    rng = np.random.default_rng(0)
    _housing(300, rng).to_csv(tmp_path / "housing.csv", index=False)
    run = _tune(tmp_path, {"name": "california_housing"})
    new = _housing(6, rng).drop(columns=["median_house_value"])
    derived = _derived(new)

    from_file_columns = tunelab.predict(run, new)
    from_features = tunelab.predict(run, derived)

    assert list(from_file_columns.columns) == ["prediction_MedHouseVal"]
    with pytest.raises(tunelab.DataError, match="row 0, column MedInc: empty or not a number"):
        tunelab.predict(run, derived.assign(MedInc=None))  # no gaps in this data set: an empty cell is an error
    assert from_file_columns.to_numpy() == pytest.approx(from_features.to_numpy(), rel=1e-5)


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_house_prices_rows_with_categories_predict_with_their_id(tmp_path):
    rng = np.random.default_rng(1)
    rows = 200
    zoning = rng.choice(["RL", "RM", "FV"], rows)
    frame = pd.DataFrame(
        {
            "Id": np.arange(1, rows + 1),
            "OverallQual": rng.integers(1, 11, rows),
            "GrLivArea": rng.integers(500, 4000, rows),
            "TotalBsmtSF": np.where(np.arange(rows) % 10 == 3, np.nan, rng.integers(0, 2000, rows)),
            "MSZoning": zoning,
            "SalePrice": rng.integers(50_000, 500_000, rows),
        }
    )
    (tmp_path / "house_prices").mkdir()
    frame.to_csv(tmp_path / "house_prices" / "train.csv", index=False)
    run = _tune(tmp_path, {"name": "house_prices", "features": ["OverallQual", "GrLivArea", "TotalBsmtSF", "MSZoning"]})
    test_csv = tmp_path / "test.csv"  # Kaggle's test.csv: the same columns without SalePrice
    frame.drop(columns=["SalePrice"]).head(4).assign(Id=[1461, 1462, 1463, 1464]).to_csv(test_csv, index=False)

    predicted = tunelab.predict(run, test_csv)

    assert list(predicted.columns) == ["Id", "prediction_SalePrice"]
    assert predicted["Id"].tolist() == [1461, 1462, 1463, 1464]
    assert np.isfinite(predicted["prediction_SalePrice"]).all()
    rezoned = pd.read_csv(test_csv).assign(MSZoning="FV" if zoning[0] != "FV" else "RL")
    assert tunelab.predict(run, rezoned)["prediction_SalePrice"][0] != predicted["prediction_SalePrice"][0]


def test_a_category_not_seen_in_training_predicts_with_a_warning_naming_column_value_and_rows(tmp_path, caplog):
    rng = np.random.default_rng(3)
    rows = 120
    frame = pd.DataFrame({"Id": np.arange(1, rows + 1), "OverallQual": rng.integers(1, 11, rows),
                          "MSZoning": rng.choice(["RL", "RM"], rows), "SalePrice": rng.integers(50_000, 500_000, rows)})
    (tmp_path / "house_prices").mkdir()
    frame.to_csv(tmp_path / "house_prices" / "train.csv", index=False)
    run = _tune(tmp_path, {"name": "house_prices", "features": ["OverallQual", "MSZoning"]})
    seen = frame.drop(columns=["SalePrice"]).head(3)

    with caplog.at_level("WARNING", logger="tunelab.app.predict"):
        tunelab.predict(run, seen)
    assert not caplog.records
    with caplog.at_level("WARNING", logger="tunelab.app.predict"):
        predicted = tunelab.predict(run, seen.assign(MSZoning=["RL", "C (all)", "C (all)"]))
    assert np.isfinite(predicted["prediction_SalePrice"]).all()
    [record] = caplog.records
    assert "column MSZoning: 2 row(s)" in record.getMessage() and "'C (all)'" in record.getMessage()
    assert "rows 1, 2" in record.getMessage()


@pytest.mark.usefixtures("no_report")  # asserts nothing about the report (fixtures/no_report.py)
def test_an_empty_cell_where_the_data_set_has_gaps_gets_the_train_median(tmp_path):
    from tunelab.app.predict import load_final_model

    rng = np.random.default_rng(2)
    frame = _housing(300, rng)
    frame.loc[::7, "total_bedrooms"] = np.nan  # as Géron's housing.csv leaves 207 of them blank
    frame.to_csv(tmp_path / "housing.csv", index=False)
    run = _tune(tmp_path, {"name": "california_housing"})
    fill = load_final_model(run)[1]["feature_fill"]
    assert set(fill) == set(CALIFORNIA_FEATURES)
    new = _housing(3, rng).drop(columns=["median_house_value"])
    new.loc[1, "total_bedrooms"] = np.nan
    new.loc[2, "median_income"] = np.nan  # a column without gaps in training: filled alike
    derived = _derived(new)
    derived.loc[1, "AveBedrms"] = fill["AveBedrms"]
    derived.loc[2, "MedInc"] = fill["MedInc"]

    predicted = tunelab.predict(run, new)

    assert predicted.to_numpy() == pytest.approx(tunelab.predict(run, derived).to_numpy(), rel=1e-5)
