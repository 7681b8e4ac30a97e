"""The fine-tuning stage's choice of weights: the mean of its epochs' weights, kept unless its validation
losses are higher than the frozen stage's beyond chance (or, by the older rule, only when it beats the frozen
stage on validation loss). A small dense model stands in for the unfrozen blocks and the head."""

import numpy as np
import pytest

from trashure.config import TrainConfig
from trashure.training.keras_parts import (FINE_TUNE_STAGE, one_hot, photo_losses, run_second_stage,
                                          worse_p_value)


def _problem(seed: int = 0, n: int = 96, spread: float = 0.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, 4))
    labels = rng.integers(0, 3, n)
    inputs = (centres[labels] + rng.normal(0, spread, (n, 4))).astype(np.float32)
    return inputs, labels


def _model(learning_rate: float):
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _snapshots():
    import keras

    class Snapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights = []

        def on_epoch_end(self, epoch, logs=None):
            self.weights.append([w.copy() for w in self.model.get_weights()])

    return Snapshots()


def _stage(model, train, val, config: TrainConfig):
    from trashure.training.keras_loop import ArrayBatches, RunCallback

    history: list = []
    snapshots = _snapshots()
    facts = run_second_stage(model, model, val, config, history,
                             RunCallback(None, config.fine_tune_epochs, lambda line: None, history, FINE_TUNE_STAGE),
                             lambda: ArrayBatches(*train, batch_size=16, seed=0), None, snapshots,
                             echo=lambda line: None)
    return facts, history, snapshots.weights


@pytest.mark.parametrize("epochs", [1, 4])
def test_the_fine_tuned_model_is_the_mean_of_the_weights_at_the_end_of_every_epoch(epochs):
    inputs, labels = _problem()
    model = _model(0.02)
    config = TrainConfig(fine_tune_epochs=epochs, fine_tune_patience=10)
    train, val = (inputs[:64], one_hot(labels[:64], 3)), (inputs[64:], one_hot(labels[64:], 3))
    facts, history, snapshots = _stage(model, train, val, config)

    assert len(snapshots) == len(history) == epochs and facts["fine_tune_averaged_epochs"] == epochs
    assert facts["fine_tune_kept"]  # from random weights, any training beats them
    mean = [np.mean([s[i] for s in snapshots], axis=0) for i in range(len(snapshots[0]))]
    for got, want in zip(model.get_weights(), mean):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    if epochs > 1:  # the mean is neither the last epoch's weights nor the best one's
        assert not all(np.allclose(a, b) for a, b in zip(model.get_weights(), snapshots[-1]))
    loss, accuracy = model.evaluate(*val, verbose=0)[:2]
    assert facts["fine_tune_val_loss"] == pytest.approx(loss, rel=1e-5)
    assert facts["fine_tune_val_accuracy"] == pytest.approx(accuracy)


def test_a_mean_that_does_not_beat_the_frozen_stage_gives_the_frozen_weights_back():
    inputs, labels = _problem()
    model = _model(0.05)
    val = (inputs[64:], one_hot(labels[64:], 3))
    model.fit(inputs[:64], one_hot(labels[:64], 3), epochs=60, verbose=0)  # a good "frozen stage"
    before = [w.copy() for w in model.get_weights()]
    wrong = (inputs[:64], one_hot((labels[:64] + 1) % 3, 3))  # fine-tuning on wrong labels can only hurt
    facts, _, snapshots = _stage(model, wrong, val, TrainConfig(fine_tune_epochs=3, fine_tune_patience=10))

    assert not facts["fine_tune_kept"] and facts["fine_tune_val_loss"] > facts["frozen_val_loss"]
    assert not all(np.allclose(a, b) for a, b in zip(snapshots[-1], before))  # it did move
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_by_default_a_stage_whose_validation_loss_only_rises_still_averages_every_epoch():
    """Early stopping would cut the path the mean is taken over, which is what generalised across sources
    (docs/experiments.md, "A longer path to average"): the default patience outlasts the stage."""
    inputs, labels = _problem()
    model = _model(0.05)
    model.fit(inputs[:64], one_hot(labels[:64], 3), epochs=60, verbose=0)
    wrong = (inputs[:64], one_hot((labels[:64] + 1) % 3, 3))  # every epoch raises the validation loss
    val = (inputs[64:], one_hot(labels[64:], 3))
    facts, history, _ = _stage(model, wrong, val, TrainConfig(fine_tune_epochs=8))

    losses = [h["val_loss"] for h in history]
    assert losses[-1] > losses[0]  # patience 5 would have stopped after epoch 6
    assert facts["fine_tune_epochs_run"] == len(history) == 8 and facts["fine_tune_averaged_epochs"] == 8
    assert TrainConfig().fine_tune_patience >= TrainConfig().fine_tune_epochs


def _stage_ending_at(model, train, val, config: TrainConfig, end: list[np.ndarray]):
    """A stage whose every epoch ends at the weights `end` (the optimiser's rate is 0): a controlled stand-in
    for a fine-tuning stage that lands on another model about as good as the one it started from."""
    import keras

    from trashure.training.keras_loop import ArrayBatches

    class EndAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.set_weights(end)

    model.optimizer.learning_rate.assign(0.0)
    return run_second_stage(model, model, val, config, [], EndAt(), lambda: ArrayBatches(*train, batch_size=16,
                            seed=0), None, echo=lambda line: None)


@pytest.mark.parametrize("rule", ["unless_worse", "if_better"])
def test_a_fine_tuned_model_a_hair_worse_on_validation_is_kept_unless_the_rule_is_if_better(rule):
    """A stage that ends at another model a hair above the frozen stage's validation loss, better on some
    photos and worse on others: noise for the default rule, a reason to give the frozen weights back for the
    older one."""
    import keras

    inputs, labels = _problem(2, n=400, spread=3.0)  # classes that overlap: a validation loss well above 0
    train, val = (inputs[:200], one_hot(labels[:200], 3)), (inputs[200:], one_hot(labels[200:], 3))
    model = _model(0.05)
    model.fit(*train, epochs=30, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    frozen = photo_losses(model, val)
    for seed in range(2, 40):  # models trained from other starts until one lands within 10% above
        keras.utils.set_random_seed(seed)
        other = keras.models.clone_model(model)
        other.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
        other.fit(*train, epochs=30, verbose=0)
        if frozen.mean() < photo_losses(other, val).mean() < 1.1 * frozen.mean():
            break
    else:
        pytest.fail("no other start landed within 10% above the frozen stage's loss")
    end = other.get_weights()
    facts = _stage_ending_at(model, train, val, TrainConfig(fine_tune_epochs=1, fine_tune_patience=10,
                                                            fine_tune_keep=rule), end)

    assert facts["frozen_val_loss"] < facts["fine_tune_val_loss"]
    if rule == "if_better":
        assert not facts["fine_tune_kept"]
        for got, want in zip(model.get_weights(), before):
            np.testing.assert_array_equal(got, want)
    else:
        assert facts["fine_tune_kept"] and facts["fine_tune_worse_p"] >= 0.05, facts
        for got, want in zip(model.get_weights(), end):
            np.testing.assert_allclose(got, want, rtol=1e-6)
        assert facts["fine_tune_worse_p"] == pytest.approx(worse_p_value(photo_losses(other, val), frozen), rel=1e-4)


def test_the_worse_p_value_is_small_only_for_losses_higher_photo_by_photo():
    rng = np.random.default_rng(0)
    before = rng.exponential(0.2, 300)
    assert worse_p_value(before * 0.9, before) == 1.0  # better on the mean: never "worse"
    assert worse_p_value(before + rng.normal(0.002, 0.05, 300), before) > 0.05  # a hair, within the noise
    assert worse_p_value(before + 0.05 + rng.normal(0, 0.05, 300), before) < 1e-6  # higher on nearly every photo


def test_a_config_saved_before_the_keep_rule_existed_still_means_if_better():
    old = TrainConfig().to_dict()
    del old["fine_tune_keep"]
    assert TrainConfig.from_dict(old).fine_tune_keep == "if_better"
    assert TrainConfig().fine_tune_keep == "unless_worse"
    with pytest.raises(ValueError, match="fine_tune_keep"):
        TrainConfig(fine_tune_keep="always")


def test_without_averaging_the_best_epoch_is_kept():
    inputs, labels = _problem(1)
    model = _model(0.02)
    config = TrainConfig(fine_tune_epochs=4, fine_tune_patience=10, fine_tune_average_weights=False)
    val = (inputs[64:], one_hot(labels[64:], 3))
    facts, history, snapshots = _stage(model, (inputs[:64], one_hot(labels[:64], 3)), val, config)

    best = int(np.argmin([h["val_loss"] for h in history]))
    assert facts["fine_tune_kept"] and facts["fine_tune_best_epoch"] == best + 1
    assert "fine_tune_averaged_epochs" not in facts
    for got, want in zip(model.get_weights(), snapshots[best]):
        np.testing.assert_array_equal(got, want)


def test_a_config_saved_before_averaging_existed_still_means_the_best_epoch():
    old = TrainConfig().to_dict()
    del old["fine_tune_average_weights"]
    assert TrainConfig.from_dict(old).fine_tune_average_weights is False
    assert TrainConfig.from_dict(TrainConfig().to_dict()).fine_tune_average_weights is True
