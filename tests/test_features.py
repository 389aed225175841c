"""The descriptor store and its cache: reuse, extension, and a stale cache named with what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim2real_scaling.data.descriptors import DescriptorError
from sim2real_scaling.data.features import DescriptorStore, featurize

RDKIT = {"set": "rdkit"}


def test_cache_is_reused_and_extended(tmp_path: Path) -> None:
    cache = tmp_path / "cache.npz"
    first = featurize(["CCO", "CCC"], RDKIT, cache)
    assert sorted(first.keys.tolist()) == ["CCC", "CCO"]
    second = featurize(["CCO", "c1ccccc1"], RDKIT, cache)
    assert sorted(DescriptorStore.load(cache).keys.tolist()) == ["CCC", "CCO", "c1ccccc1"]
    np.testing.assert_array_equal(second.rows(["CCO"]), first.rows(["CCO"]))  # from the cache, unchanged


def test_stale_cache_with_other_columns_names_the_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache.npz"
    store = featurize(["CCO"], RDKIT, cache)
    renamed = store.names.astype(str).copy()
    renamed[0] = "OldDescriptor"
    DescriptorStore(keys=store.keys, names=renamed, values=store.values).save(cache)
    with pytest.raises(DescriptorError, match=r"cache .*cache\.npz was made with other descriptor columns.*"
                                              r"OldDescriptor.*delete it"):
        featurize(["CCO", "CCC"], RDKIT, cache)
    assert DescriptorStore.load(cache).names[0] == "OldDescriptor"  # the user's file is left as it was
