import numpy as np
import pytest

from sim2real_scaling.data.transforms import PropertyTransform, TransformError

VALUES = np.array([0.5, 1.0, 2.0, 8.0, 30.0, 120.0])


@pytest.mark.parametrize("steps", [["standardize"], ["log", "standardize"], ["log10"], ["yeo-johnson"],
                                   ["min-max"], ["log", "yeo-johnson", "standardize"]])
def test_round_trip_and_serialisation(steps):
    t = PropertyTransform(steps).fit(VALUES)
    y = t.transform(VALUES)
    np.testing.assert_allclose(t.inverse_transform(y), VALUES, rtol=1e-9)
    again = PropertyTransform.from_dict(t.to_dict())
    np.testing.assert_allclose(again.transform(VALUES), y)


def test_standardize_gives_zero_mean_unit_sd():
    y = PropertyTransform(["standardize"]).fit(VALUES).transform(VALUES)
    assert abs(y.mean()) < 1e-12 and abs(y.std() - 1) < 1e-12


def test_yeo_johnson_handles_negative_values():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 4.0, 10.0])
    t = PropertyTransform(["yeo-johnson"]).fit(x)
    np.testing.assert_allclose(t.inverse_transform(t.transform(x)), x, atol=1e-9)


def test_log_of_non_positive_value_names_the_position():
    with pytest.raises(TransformError, match=r"target values.*position 2.*-1"):
        PropertyTransform(["log"]).fit(np.array([1.0, 2.0, -1.0]), "target values")


def test_unknown_step_is_rejected():
    with pytest.raises(TransformError, match="unknown transform"):
        PropertyTransform(["sqrt"])
