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


# -- batches of transforms (one per trial) and their equality with scikit-learn ----------------------------------

RNG = np.random.default_rng(3)
BATCH = np.exp(RNG.normal(1.0, 0.8, size=(5, 40)))  # 5 trials' training values, positive and skewed


def test_a_batch_fits_each_chain_on_its_own_row_like_one_transform_each():
    steps = ["log", "yeo-johnson", "standardize"]
    batch = PropertyTransform(steps).fit_batch(BATCH)
    for e in range(len(BATCH)):
        one = PropertyTransform(steps).fit(BATCH[e])
        np.testing.assert_allclose(batch.transform(BATCH)[e], one.transform(BATCH[e]), rtol=1e-12, atol=1e-12)
    y = batch.transform(BATCH[0])  # the same rows for every chain
    np.testing.assert_allclose(batch.inverse_transform(y), np.broadcast_to(BATCH[0], y.shape), rtol=1e-9)


def test_the_vectorised_steps_equal_scikit_learn():
    from sklearn.preprocessing import MinMaxScaler, PowerTransformer, StandardScaler

    x = np.concatenate([BATCH[0], -BATCH[1][:10]])  # negative values too (yeo-johnson's other branch)
    for steps, reference in ((["standardize"], StandardScaler()), (["min-max"], MinMaxScaler()),
                             (["yeo-johnson"], PowerTransformer(method="yeo-johnson", standardize=False)),
                             (["yeo-johnson", "standardize"], PowerTransformer(method="yeo-johnson"))):
        ours = PropertyTransform(steps).fit(x)
        theirs = reference.fit(x[:, None])
        np.testing.assert_allclose(ours.transform(x), theirs.transform(x[:, None])[:, 0], rtol=1e-6, atol=1e-8)
        y = ours.transform(x)
        np.testing.assert_allclose(ours.inverse_transform(y), theirs.inverse_transform(y[:, None])[:, 0],
                                   rtol=1e-6, atol=1e-8)


def test_trial_transforms_never_see_the_test_rows():
    from sim2real_scaling.data.transforms import target_transform_for_trials

    values = BATCH[0].copy()
    train = np.array([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    source = PropertyTransform(["log", "standardize"]).fit(BATCH[3])
    before = target_transform_for_trials(["log", "standardize"], "each", source, values, train).to_dict()
    values[20:] *= 1000.0  # rows 20.. are nobody's training rows (a unit slip in the test rows)
    after = target_transform_for_trials(["log", "standardize"], "each", source, values, train).to_dict()
    assert before == after
    shared = target_transform_for_trials(["log", "standardize"], "source", source, values, train)
    assert shared.size == 2 and shared.select([1]).to_dict() == source.to_dict()
