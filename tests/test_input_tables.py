import pandas as pd
import pytest

from sim2real_scaling.data.clean import DataError, canonical_smiles, clean_table, looks_like_formula, parse_values
from sim2real_scaling.data.tables import read_prepared, read_table


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


# ---- the one reader (data/tables.py) --------------------------------------------------------------


FRAME = pd.DataFrame({"smiles": ["*CC*", "*CC(*)C", "*CC(*)c1ccccc1"], "value": [0.91, 1.05, 1.0],
                      "polymer_class": ["vinyl", "01", "vinyl"], "name": ["PE, linear", 'say "hi"', ""]})


def _save(frame: pd.DataFrame, path) -> None:
    name = str(path)
    if name.endswith((".tsv", ".tsv.gz")):
        frame.to_csv(path, sep="\t", index=False)
    elif name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif name.endswith(".xlsx"):
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False)


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.csv.gz", "t.tsv.gz", "t.parquet", "t.xlsx"])
def test_every_format_gives_the_same_text_cells_and_row_numbers(tmp_path, name):
    _save(FRAME, tmp_path / name)
    table = read_table(tmp_path / name, what="properties.p.target", required=["smiles", "value"])
    assert list(table.columns) == list(FRAME.columns)
    assert table.index.tolist() == [2, 3, 4]  # spreadsheet rows: header = row 1
    assert table["polymer_class"].tolist() == ["vinyl", "01", "vinyl"]  # labels stay text
    assert table["name"].tolist() == ["PE, linear", 'say "hi"', ""]
    assert [float(v) for v in table["value"]] == [0.91, 1.05, 1.0]


def test_typed_parquet_columns_become_the_text_a_csv_would_hold(tmp_path):
    frame = pd.DataFrame({"smiles": [1, 2, None], "value": [0.5, float("nan"), 1e-7], "flag": [True, False, None],
                          "n": pd.array([1, None, 3], dtype="Int64"), "cls": pd.Categorical(["a", None, "b"])})
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    table = read_table(tmp_path / "t.parquet", what="x")
    assert table["smiles"].tolist() == ["1.0", "2.0", ""]  # a float column with a gap
    assert table["value"].tolist() == ["0.5", "", "1e-07"]
    assert table["flag"].tolist() == ["True", "False", ""]
    assert table["n"].tolist() == ["1", "", "3"] and table["cls"].tolist() == ["a", "", "b"]


def test_unreadable_file_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "locked.csv"
    FRAME.to_csv(path, index=False)
    real_open = open

    def refuse(file, *args, **kwargs):  # chmod 000 does not stop root, which the test may run as
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(DataError, match=r"^properties\.p\.target: .*locked\.csv cannot be read: permission denied"):
        read_table(path, what="properties.p.target")


def test_rows_with_extra_fields_are_named_and_trailing_separators_ignored(tmp_path):
    (tmp_path / "a.csv").write_text("smiles,value\n*CC*,1.0\n*CC(*)C,1,5\n*CCC*,2\n*CCCC*,2,5\n")
    with pytest.raises(DataError, match=r"a\.csv row 3 has 3 fields but the header has 2 \(and 1 more rows, e\.g\. "
                                        r"row 5\): '\*CC\(\*\)C,1,5'"):
        read_table(tmp_path / "a.csv", what="x")
    (tmp_path / "b.csv").write_text("smiles,value\n*CC*,1.0,,\n*CC(*)C,1.5,\n")
    table = read_table(tmp_path / "b.csv", what="x")
    assert list(table.columns) == ["smiles", "value"] and table["value"].tolist() == ["1.0", "1.5"]


def test_a_huge_table_is_read_and_cleaned_in_seconds(tmp_path):
    import time

    n = 200_000
    keys = [f"*C{'C' * (i % 40)}*" for i in range(n)]
    pd.DataFrame({"smiles": keys, "value": [1.0 + (i % 97) / 100 for i in range(n)]}).to_csv(tmp_path / "big.csv",
                                                                                        index=False)
    start = time.perf_counter()
    clean = clean_table({"path": str(tmp_path / "big.csv"), "key_column": "smiles", "value_column": "value"},
                        kind="smiles", role="source", property_name="p")
    assert time.perf_counter() - start < 30
    assert clean.rows_read == n and clean.rows_valid == n and len(clean.table) == 40


def test_read_prepared_keeps_labels_and_ids_as_text(tmp_path):
    pd.DataFrame({"key": ["*CC*", "*CCC*"], "value": [1.0, 2.0], "y": [0.1, 0.2], "source_row": [2, 3],
                  "polymer_class": ["01", "2"], "id": ["007", "8"]}).to_csv(tmp_path / "target.csv", index=False)
    table = read_prepared(tmp_path / "target.csv")
    assert table["polymer_class"].tolist() == ["01", "2"] and table["id"].tolist() == ["007", "8"]
    assert table["value"].dtype == float and table["source_row"].tolist() == [2, 3]


def test_value_parsing_says_why_a_cell_is_not_a_number():
    values, reasons = parse_values(pd.Series(["1.5", " 2 ", "1,5", "1.2 g/cm3", "", "NaN", "inf", "\u22121.5", "abc"]))
    assert values[:2].tolist() == [1.5, 2.0] and values[7] == -1.5
    assert "decimal comma? write 1.5" in reasons[2] and "a unit or note in the cell" in reasons[3]
    assert reasons[4] == reasons[5] == "missing value" and reasons[6].startswith("not a finite number")
    assert reasons[8] == "not a number ('abc' is not numeric)"


def test_formulas_are_told_apart_from_smiles():
    assert all(looks_like_formula(f) for f in ["Bi2Te3", "NaCl", "Ca(OH)2", "SiO2"])
    assert not any(looks_like_formula(s) for s in ["CCO", "*CC(*)C", "c1ccccc1"])
    keys, reasons = canonical_smiles(["Bi2Te3", "12", "CCO"])
    assert "looks like a chemical formula" in reasons[0] and "is a number" in reasons[1] and keys[2] == "CCO"
