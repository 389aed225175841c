import pandas as pd
import pytest

from sim2real_scaling.data.clean import DataError, canonical_smiles, clean_table


def write(tmp_path, rows, name="t.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return {"path": str(path), "key_column": "smiles", "value_column": "value", "id_column": None, "filter": {}}


def test_canonical_smiles_merges_spellings_and_keeps_attachment_points():
    keys, reasons = canonical_smiles(["*CC(*)c1ccccc1", "*C(C*)c1ccccc1", "C1=CC=CC=C1CC", "not a smiles", ""])
    assert keys[0] == keys[1] and "*" in keys[0]
    assert keys[3] is None and "invalid SMILES" in reasons[3]
    assert keys[4] is None and reasons[4] == "empty SMILES"


def test_bad_rows_are_rejected_with_file_row_column_and_reason(tmp_path):
    spec = write(tmp_path, {"smiles": ["*CC*", "xyz(", "*CC(*)C", "*CC(*)Cl", None],
                            "value": [0.9, 1.0, "abc", float("inf"), 1.2]})
    clean = clean_table(spec, kind="smiles", role="target", property_name="density")
    assert clean.table["key"].tolist() == ["*CC*"]
    rejected = clean.rejected.set_index("row")
    assert rejected.loc[3, "column"] == "smiles" and "invalid SMILES" in rejected.loc[3, "reason"]
    assert "'abc' is not numeric" in rejected.loc[4, "reason"]
    assert "not a finite number" in rejected.loc[5, "reason"]
    assert rejected.loc[6, "reason"] == "empty SMILES"
    assert set(clean.rejected["file"]) == {spec["path"]}


def test_missing_column_names_file_and_columns_present(tmp_path):
    spec = write(tmp_path, {"smiles": ["*CC*"], "density": [0.9]})
    with pytest.raises(DataError, match=r"properties\.density\.source: .*t\.csv has no column\(s\) \['value'\].*density"):
        clean_table(spec, kind="smiles", role="source", property_name="density")


def test_missing_file_and_empty_table(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        clean_table({"path": str(tmp_path / "nope.csv"), "key_column": "smiles", "value_column": "value"},
                    kind="smiles", role="source", property_name="p")
    (tmp_path / "empty.csv").write_text("smiles,value\n")
    with pytest.raises(DataError, match="header but no rows"):
        clean_table({"path": str(tmp_path / "empty.csv"), "key_column": "smiles", "value_column": "value"},
                    kind="smiles", role="source", property_name="p")


@pytest.mark.parametrize("policy,expected", [("mean", 1.0), ("first", 0.9)])
def test_duplicate_policy(tmp_path, policy, expected):
    # the same repeat unit spelled two ways
    spec = write(tmp_path, {"smiles": ["*CC(*)C", "*C(C*)C", "*CC*"], "value": [0.9, 1.1, 0.8]})
    table = clean_table(spec, kind="smiles", role="source", property_name="p", duplicates=policy).table
    assert len(table) == 2
    assert table.set_index("key").loc["*CC(*)C", "value"] == pytest.approx(expected)


def test_conflicting_duplicates_raise_under_error_policy(tmp_path):
    spec = write(tmp_path, {"smiles": ["*CC(*)C", "*C(C*)C"], "value": [0.9, 1.1]})
    with pytest.raises(DataError, match=r"rows \[2, 3\] are the same molecule"):
        clean_table(spec, kind="smiles", role="source", property_name="p", duplicates="error")


def test_input_file_is_not_modified(tmp_path):
    spec = write(tmp_path, {"smiles": ["*CC*", "bad("], "value": [0.9, 1.0]})
    before = (tmp_path / "t.csv").read_bytes()
    clean_table(spec, kind="smiles", role="source", property_name="p")
    assert (tmp_path / "t.csv").read_bytes() == before
