"""Cut-and-paste onto generated backgrounds, and camera noise: what they promise, on made-up photos."""

import numpy as np
from PIL import Image, ImageFilter

from trashure.backgrounds import GENERATORS, random_background
from trashure.offline_augment import (OfflineAugment, _paste, augment_view, board_mask, closeup, paste_on_background,
                                      shading_matte, view_rng)


def board_photo(seed: int = 0, size: int = 224, cx: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A dark bottle-like object on an unevenly lit white board; (photo, true object mask)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    board = 235 - 20 * x / size + rng.normal(0, 2, (size, size))  # light falls off to the right
    photo = np.repeat(board[..., None], 3, axis=2)
    obj = ((x - cx) / 35) ** 2 + ((y - 110) / 80) ** 2 < 1
    photo[obj] = [40, 110, 60] + rng.normal(0, 5, (obj.sum(), 3))
    return np.clip(photo, 0, 255).astype(np.uint8), obj


def test_the_object_is_cut_out_of_a_plain_board():
    photo, truth = board_photo()
    alpha = board_mask(photo)
    assert alpha is not None
    found = alpha > 0.5
    iou = (found & truth).sum() / (found | truth).sum()
    assert iou > 0.9


def test_an_object_touching_the_edge_is_still_cut_out():
    photo, truth = board_photo(cx=15)
    alpha = board_mask(photo)
    assert alpha is not None and ((alpha > 0.5) & truth).sum() / truth.sum() > 0.85


def test_a_textured_scene_is_not_taken_for_a_board():
    rng = np.random.default_rng(0)
    scene = random_background(np.random.default_rng(3))
    scene = np.clip(scene + rng.normal(0, 40, scene.shape), 0, 255).astype(np.uint8)
    assert board_mask(scene) is None


def test_pasting_keeps_the_object_and_replaces_the_board():
    photo, truth = board_photo()
    background = np.full((224, 224, 3), 90, np.float32)
    out = paste_on_background(photo, board_mask(photo), background, np.random.default_rng(1), (0.6, 0.6))
    assert out.shape == (224, 224, 3)
    # No white board is left: every pixel is the object's green or the grey background (shadowed or not).
    assert out.max() < 140
    greenish = (out[..., 1] > out[..., 0] + 30).mean()
    assert 0.05 < greenish < truth.mean() * 1.2


def test_views_are_reproducible_and_differ_from_each_other():
    photo, _ = board_photo()
    alpha = board_mask(photo)
    settings = OfflineAugment(paste_probability=1.0)
    a = augment_view(photo, settings, view_rng(5, 0, 1), alpha)
    b = augment_view(photo, settings, view_rng(5, 0, 1), alpha)
    c = augment_view(photo, settings, view_rng(5, 0, 2), alpha)
    assert a.dtype == np.uint8 and a.shape == photo.shape
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 10


def test_no_paste_without_a_mask_and_nothing_at_all_when_switched_off():
    photo, _ = board_photo()
    off = OfflineAugment(paste_probability=0.0, photo_noise=False)
    np.testing.assert_array_equal(augment_view(photo, off, view_rng(0, 0, 1), board_mask(photo)), photo)
    noisy = augment_view(photo, OfflineAugment(paste_probability=1.0), view_rng(0, 0, 1), None)
    # Without a mask there is nothing to paste: the board stays (only camera noise changes it).
    assert np.median(noisy[:10, :10]) > 150


def test_every_background_generator_makes_a_varied_rgb_picture():
    for name, make in GENERATORS.items():
        out = make(np.random.default_rng(0), 224)
        assert out.shape == (224, 224, 3), name
        assert out.std() > 2, name
    backgrounds = [random_background(np.random.default_rng(i)) for i in range(8)]
    means = np.array([b.mean(axis=(0, 1)) for b in backgrounds])
    assert means.std(axis=0).mean() > 10  # backgrounds differ from each other, not one stock picture
    assert all(b.min() >= 0 and b.max() <= 255 for b in backgrounds)


def test_a_share_of_the_camera_noise_views_is_turned_grey():
    from trashure.config import TrainConfig
    from trashure.training.views import offline_settings

    photo, _ = board_photo()
    alpha = board_mask(photo)

    def grey(view: np.ndarray) -> bool:
        return bool((view[..., 0] == view[..., 1]).all() and (view[..., 1] == view[..., 2]).all())

    def views(p: float, n: int = 60) -> list[np.ndarray]:
        settings = OfflineAugment(grayscale_probability=p)
        return [augment_view(photo, settings, view_rng(0, 0, v), alpha) for v in range(1, n + 1)]

    assert all(grey(v) for v in views(1.0)) and not any(grey(v) for v in views(0.0))
    assert 5 <= sum(grey(v) for v in views(0.25)) <= 28  # about one in four
    # Views that stay in colour are drawn exactly as without the option: only the last draw is added.
    for with_grey, without in zip(views(0.25), views(0.0)):
        assert grey(with_grey) or np.array_equal(with_grey, without)
    assert offline_settings(TrainConfig(photo_noise=False, grayscale_probability=1.0)).grayscale_probability == 0
    assert TrainConfig.for_mode("exact").grayscale_probability == 0
    assert TrainConfig.from_dict({"mode": "fast"}).grayscale_probability == 0  # a model from before the option


def test_a_share_outside_zero_to_one_is_refused():
    import pytest

    from trashure.config import TrainConfig

    for name in ("paste_probability", "scene_probability", "texture_probability", "frame_paste_probability",
                 "grayscale_probability",
                 "closeup_probability", "distractor_probability", "style_mix_probability", "drop_block_probability",
                 "amplitude_mix_probability"):
        with pytest.raises(ValueError, match=name):
            TrainConfig(**{name: 1.5})


def test_a_closeup_enlarges_the_object_around_a_point_of_it():
    photo, truth = board_photo(cx=50)  # the object off centre, on the left
    alpha = truth.astype(np.float32)
    rng = np.random.default_rng(0)
    for _ in range(5):
        out = closeup(photo.astype(np.float32), alpha, rng, (0.5, 0.5))
        assert out.shape == photo.shape
        green = out[..., 1] > out[..., 0] + 30
        # The crop holds the object, more of the frame than in the photo, at twice its size: the
        # ellipse, 70 pixels wide in the photo, is about 140 wide in the close-up.
        assert green.mean() > 1.5 * truth.mean()
        assert 125 < green.sum(axis=1).max() < 155


def test_a_closeup_needs_an_object_and_leaves_photos_without_one_alone():
    photo, _ = board_photo()
    assert closeup(photo.astype(np.float32), np.zeros(photo.shape[:2], np.float32), np.random.default_rng(0)) is None
    with_closeups = OfflineAugment(paste_probability=1.0, closeup_probability=1.0)
    without = OfflineAugment(paste_probability=1.0)
    # No mask (not a board photo): the option draws nothing, so the view is the one made without it.
    np.testing.assert_array_equal(augment_view(photo, with_closeups, view_rng(3, 0, 1), None),
                                  augment_view(photo, without, view_rng(3, 0, 1), None))
    alpha = board_mask(photo)
    pasted = augment_view(photo, without, view_rng(3, 0, 1), alpha)
    enlarged = augment_view(photo, with_closeups, view_rng(3, 0, 1), alpha)
    assert np.abs(pasted.astype(int) - enlarged.astype(int)).mean() > 10


def test_closeups_are_a_setting_of_the_views_and_off_in_older_configs():
    from trashure.config import TrainConfig
    from trashure.features import VIEW_SETTINGS

    assert "closeup_probability" in VIEW_SETTINGS  # cached views made without close-ups are not reused
    assert TrainConfig.for_mode("exact").closeup_probability == 0
    assert TrainConfig.from_dict({"mode": "fast"}).closeup_probability == 0


def red_disc_on_board(size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """A red disc on a white board and its mask (uint8 alpha): a made-up piece of `other` litter."""
    y, x = np.mgrid[0:size, 0:size]
    disc = (x - 112) ** 2 + (y - 112) ** 2 < 60 ** 2
    photo = np.full((size, size, 3), 235, np.uint8)
    photo[disc] = [220, 20, 20]
    return photo, disc.astype(np.uint8) * 255


def test_distractors_are_pasted_as_clutter_on_the_background():
    from trashure.offline_augment import with_distractors

    background = np.full((224, 224, 3), 128, np.float32)
    out = with_distractors(background, [red_disc_on_board()], np.random.default_rng(0), (0.2, 0.2))
    red = (out[..., 0] > 180) & (out[..., 1] < 60)
    # One or two discs 0.2 of the frame wide (45 px): 1,600 to 3,200 red pixels; elsewhere only their
    # shadows (darker grey, not another colour) and the disc's anti-aliased rim.
    assert 1000 < red.sum() < 3500
    rim = np.asarray(Image.fromarray(red.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(5))) > 0
    rest = out[~rim]
    assert rest.max() <= 128.5 and np.ptp(rest, axis=1).max() < 1


def test_the_labelled_object_is_pasted_over_its_distractors(monkeypatch):
    import trashure.offline_augment as offline_augment

    photo, _ = board_photo()
    clutter = red_disc_on_board()
    pasted = []
    original = offline_augment._paste

    def recording(image, *args):
        pasted.append("clutter" if image is clutter[0] else "object")
        return original(image, *args)

    monkeypatch.setattr(offline_augment, "_paste", recording)
    settings = OfflineAugment(paste_probability=1.0, photo_noise=False, distractor_probability=1.0)
    augment_view(photo, settings, view_rng(0, 0, 1), board_mask(photo), None, [clutter])
    assert pasted[-1] == "object" and 2 <= len(pasted) <= 3 and set(pasted[:-1]) == {"clutter"}


def test_distractors_come_from_other_objects_on_a_board_and_are_a_setting_of_the_views():
    from trashure.config import TrainConfig
    from trashure.features import VIEW_SETTINGS
    from trashure.training.views import distractor_pool

    photos = np.stack([board_photo()[0]] * 3)
    masks = [np.ones((224, 224), np.uint8), None, np.ones((224, 224), np.uint8)]  # the second is a scene
    classes = ["can", "glass_bottle", "other", "plastic_bottle"]
    on = OfflineAugment(distractor_probability=0.5)
    pool = distractor_pool(photos, np.array([2, 2, 0]), masks, classes, on)
    assert pool is not None and len(pool) == 1 and pool[0][1] is masks[0]  # not the scene, not the can
    assert distractor_pool(photos, np.array([2, 2, 0]), masks, classes, OfflineAugment()) is None
    assert distractor_pool(photos, np.array([0, 0, 1]), masks, classes, on) is None
    assert "distractor_probability" in VIEW_SETTINGS
    assert TrainConfig.for_mode("exact").distractor_probability == 0
    assert TrainConfig.from_dict({"mode": "fast"}).distractor_probability == 0


def test_the_exact_mode_pastes_the_same_clutter():
    """--mode exact can train Trashure's recipe too (bench/train_speed.py's exact+ft): the distractors
    come from its training photos of `other` there as in the fast mode."""
    from trashure.config import TrainConfig
    from trashure.training.exact import _offline_transform

    can, clutter = board_photo()[0], red_disc_on_board()[0]
    photos, labels = np.stack([can, clutter]), np.array([0, 2])
    classes = ["can", "glass_bottle", "other", "plastic_bottle"]
    config = TrainConfig(mode="exact", paste_probability=1.0, photo_noise=False, distractor_probability=1.0,
                         clean_view=False)

    def red_share(transform) -> float:
        out = np.concatenate([transform(photos[[0]], np.array([0]), epoch)[0] for epoch in range(6)])
        return float(((out[..., 0] > 150) & (out[..., 1] < 80)).mean())

    assert red_share(_offline_transform(photos, config, labels, classes)) > 0.002
    assert red_share(_offline_transform(photos, config)) == 0  # no labels: no pool, no clutter


def test_paste_pools_use_the_board_masks_already_found(monkeypatch):
    """The exact mode finds every training photo's mask once; the pools reuse those rather than finding the
    masks of the photos of `other` again, and come out the same."""
    from trashure.training import views

    photos = np.stack([board_photo()[0], red_disc_on_board()[0], board_photo(seed=1)[0]])
    labels, classes = np.array([2, 0, 2]), ["can", "glass_bottle", "other", "plastic_bottle"]
    on = OfflineAugment(scene_probability=0.5, distractor_probability=0.5)
    masks = views.board_masks(photos, on)
    found = views.paste_pools(photos, labels, classes, on)

    def no_second_search(*args):
        raise AssertionError("board masks searched again")

    monkeypatch.setattr(views, "board_masks", no_second_search)
    reused = views.paste_pools(photos, labels, classes, on, masks)
    assert found[0] is None and reused[0] is None  # both photos of `other` are on a board: no scene
    assert len(reused[1]) == len(found[1]) == 2
    for (image, alpha), (image2, alpha2) in zip(reused[1], found[1]):
        assert np.array_equal(image, image2) and np.array_equal(alpha, alpha2)


def write_textures(folder, colours: list[tuple[int, int, int]]) -> str:
    """Made-up photographed surfaces: one flat colour each, with a grain, as JPEGs in folder."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, colour in enumerate(colours):
        pixels = np.clip(np.array(colour) + rng.normal(0, 12, (96, 128, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"surface{i}.jpg")
    (folder / "notes.txt").write_text("not a photo")
    return str(folder)


def test_a_texture_background_is_one_of_the_photographed_surfaces_relit(tmp_path):
    from trashure.backgrounds import load_textures, texture_background

    textures = load_textures(write_textures(tmp_path / "surfaces", [(200, 40, 40), (40, 40, 200)]))
    assert len(textures) == 2  # the .txt is not a surface
    out = [texture_background(textures, np.random.default_rng(i)) for i in range(12)]
    assert all(b.shape == (224, 224, 3) and b.dtype == np.float32 and 0 <= b.min() and b.max() <= 255 for b in out)
    reddish = [b[..., 0].mean() > b[..., 2].mean() + 60 for b in out]
    bluish = [b[..., 2].mean() > b[..., 0].mean() + 60 for b in out]
    assert all(r or b for r, b in zip(reddish, bluish)) and any(reddish) and any(bluish)
    assert np.std([b.mean() for b in out]) > 3  # relit: not the same stock picture each time


def test_texture_probability_pastes_onto_the_surfaces_and_leaves_other_draws_alone(tmp_path):
    import pytest

    from trashure.backgrounds import load_textures

    folder = write_textures(tmp_path / "surfaces", [(30, 30, 220)])
    photo, truth = board_photo()
    alpha = board_mask(photo)
    plain = OfflineAugment(photo_noise=False)
    on_surfaces = OfflineAugment(photo_noise=False, texture_probability=1.0, textures=folder)
    # Far from the object (a corner the pasted object rarely covers), the background is the blue surface.
    views = [augment_view(photo, on_surfaces, view_rng(1, 0, v), alpha) for v in range(1, 9)]
    corners = np.array([v[:20, :20].reshape(-1, 3).mean(axis=0) for v in views])
    assert (corners[:, 2] > corners[:, 0] + 60).mean() >= 0.75
    # At 0 the views are drawn exactly as before the option existed.
    zero = OfflineAugment(photo_noise=False, texture_probability=0.0, textures=folder)
    for v in range(1, 5):
        np.testing.assert_array_equal(augment_view(photo, zero, view_rng(1, 0, v), alpha),
                                      augment_view(photo, plain, view_rng(1, 0, v), alpha))
    from trashure.config import TrainConfig
    from trashure.training.views import offline_settings

    settings = offline_settings(TrainConfig(texture_probability=0.4, textures=folder))
    assert (settings.texture_probability, settings.textures) == (0.4, folder)
    assert TrainConfig.for_mode("exact").texture_probability == 0
    assert TrainConfig.from_dict({"mode": "fast"}).texture_probability == 0  # a model from before the option
    assert len(load_textures()) == 23  # the package's own surfaces (trashure/assets/surfaces)
    with pytest.raises(ValueError, match="no texture photos"):
        (tmp_path / "empty").mkdir()
        load_textures(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="does not exist"):  # refused when the settings are made, before any view
        offline_settings(TrainConfig(texture_probability=0.5, textures=str(tmp_path / "typo")))


def test_balanced_pastes_paste_every_class_as_often_as_the_least_cut_out_one():
    import pytest

    from trashure.config import TrainConfig
    from trashure.training.views import balanced_paste_scale, extract

    photo, _ = board_photo()
    alpha = (board_mask(photo) * 255).astype(np.uint8)
    # Class 0: three photos of four cut out; class 1: one of four (white paper stays on its board).
    masks = [alpha, alpha, alpha, None, alpha, None, None, None]
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scale = balanced_paste_scale(masks, labels)
    np.testing.assert_allclose(scale, [1 / 3] * 4 + [1] * 4, rtol=1e-6)
    assert (balanced_paste_scale([None] * 4, labels[:4]) == 1).all()  # nothing cut out: nothing to balance

    class Identity:  # the runner: views in, views out, so the pixels themselves can be looked at
        output_shape = (None, 224, 224, 3)

        def run(self, batch):
            return batch

    settings = OfflineAugment(photo_noise=False)  # pasted or left alone, nothing else
    images = np.stack([photo] * 8)
    views = 24

    def pasted_share(paste_scale) -> list[float]:
        out = extract(Identity(), images, views, None, settings, masks, seed=3, paste_scale=paste_scale)
        changed = np.abs(out[1:] - images[None].astype(np.float32)).mean(axis=(2, 3, 4)) > 1
        return [changed[:, labels == c].mean() for c in (0, 1)]

    plain, balanced = pasted_share(None), pasted_share(scale)
    assert plain[0] == pytest.approx(0.75) and plain[1] == pytest.approx(0.25)  # every cut-out view pasted
    assert abs(balanced[0] - 0.25) < 0.12 and balanced[1] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="balanced_pastes"):
        TrainConfig.for_mode("exact", balanced_pastes=True)
    assert TrainConfig.from_dict({"mode": "fast"}).balanced_pastes is False  # a model from before the option


def test_a_photo_that_cannot_be_cut_out_is_pasted_whole_as_a_sheet_when_asked(tmp_path):
    folder = write_textures(tmp_path / "surfaces", [(30, 30, 220)])
    sheet = np.full((224, 224, 3), 235, np.uint8)  # white paper on the white board: nothing to cut out
    framed = OfflineAugment(photo_noise=False, texture_probability=1.0, textures=folder, frame_paste_probability=1.0)
    views = [augment_view(sheet, framed, view_rng(2, 0, v), None) for v in range(1, 9)]
    for view in views:
        white = (view.min(axis=2) > 200).mean()
        blue = (view[..., 2].astype(int) > view[..., 0].astype(int) + 60).mean()
        assert 0.05 < white < 0.8 and blue > 0.15  # the sheet, smaller than the frame, on the blue surface
    # Off (the default), or with pasting off, the photo is left as it is; a photo with a mask is not framed.
    for settings in (OfflineAugment(photo_noise=False, texture_probability=1.0, textures=folder),
                     OfflineAugment(photo_noise=False, paste_probability=0.0, frame_paste_probability=1.0)):
        np.testing.assert_array_equal(augment_view(sheet, settings, view_rng(2, 0, 1), None), sheet)
    photo, _ = board_photo()
    alpha = board_mask(photo)
    np.testing.assert_array_equal(augment_view(photo, framed, view_rng(2, 0, 1), alpha),
                                  augment_view(photo, OfflineAugment(photo_noise=False, texture_probability=1.0,
                                                                     textures=folder), view_rng(2, 0, 1), alpha))


def test_amplitude_mix_keeps_the_phase_and_moves_the_amplitude():
    from trashure.offline_augment import amplitude_mix

    rng = np.random.default_rng(0)
    # Mid-grey ranges, so that the mix never reaches the clip to 0..255 and the spectra can be compared.
    photo = board_photo()[0].astype(np.float32) * 0.5 + 64
    other = rng.uniform(96, 160, photo.shape).astype(np.float32)
    assert np.allclose(amplitude_mix(photo, other, 0.0), photo, atol=1e-3)

    def amplitude(x):
        return np.abs(np.fft.rfft2(x, axes=(0, 1)))

    half = amplitude_mix(photo, other, 0.5)
    # Halfway in amplitude, and the phase of the photo where it has energy.
    assert np.abs(amplitude(half) - (amplitude(photo) + amplitude(other)) / 2).mean() < 1e-4 * amplitude(half).mean()
    assert abs(half.mean() - (photo.mean() + other.mean()) / 2) < 0.01  # the mean colour too
    strong = amplitude(photo) > np.percentile(amplitude(photo), 90)
    angle = np.angle(np.fft.rfft2(half, axes=(0, 1))) - np.angle(np.fft.rfft2(photo, axes=(0, 1)))
    assert np.median(np.abs(np.angle(np.exp(1j * angle[strong])))) < 0.05
    bright = amplitude_mix(photo * 2, other * 4, 1.0)
    assert bright.dtype == np.float32 and bright.min() >= 0 and bright.max() == 255  # clipped to pixels


def test_amplitude_mix_is_a_setting_of_the_views_that_leaves_other_draws_alone():
    from trashure.config import TrainConfig
    from trashure.features import VIEW_SETTINGS
    from trashure.training.views import offline_settings

    photo, _ = board_photo()
    alpha = board_mask(photo)

    def views(p: float, n: int = 40) -> list[np.ndarray]:
        return [augment_view(photo, OfflineAugment(amplitude_mix_probability=p), view_rng(0, 0, v), alpha)
                for v in range(1, n + 1)]

    off, half, always = views(0.0), views(0.5), views(1.0)
    # Every view mixed, and visibly: a background's texture, not a rounding.
    assert all(np.abs(a.astype(float) - b).mean() > 0.5 for a, b in zip(off, always))
    # With the option a view is either drawn exactly as without it, or mixed (about half of them here).
    same = [np.array_equal(a, b) for a, b in zip(off, half)]
    assert 8 <= sum(same) <= 32
    assert all(np.array_equal(h, o) or np.array_equal(h, a) for o, h, a in zip(off, half, always))
    assert offline_settings(TrainConfig(amplitude_mix_probability=0.5)).amplitude_mix_probability == 0.5
    assert "amplitude_mix_probability" in VIEW_SETTINGS
    assert TrainConfig.for_mode("exact").amplitude_mix_probability == 0
    assert TrainConfig.from_dict({"mode": "fast"}).amplitude_mix_probability == 0


def test_the_smallest_paste_is_a_setting_of_the_views():
    import pytest

    from trashure.config import TrainConfig
    from trashure.features import VIEW_SETTINGS
    from trashure.training.views import offline_settings

    assert offline_settings(TrainConfig()).scale_range == OfflineAugment().scale_range == (0.12, 0.9)
    assert offline_settings(TrainConfig(paste_min_scale=0.05)).scale_range == (0.05, 0.9)
    assert "paste_min_scale" in VIEW_SETTINGS
    for wrong in (0.0, 0.95):
        with pytest.raises(ValueError, match="paste_min_scale"):
            TrainConfig(paste_min_scale=wrong)
    # Smaller objects on the new backgrounds: the pasted object's size is drawn from the range.
    photo, _ = board_photo()
    alpha = board_mask(photo)

    def object_sides(low: float) -> list[int]:
        sides = []
        for v in range(30):
            rng = view_rng(0, 0, v)
            _, where = _paste(photo, alpha, np.full_like(photo, 90, dtype=np.float32), rng, (low, 0.9))
            ys, xs = np.nonzero(where > 0.5)
            sides.append(int(max(np.ptp(ys), np.ptp(xs))) + 1)
        return sides

    assert min(object_sides(0.05)) < 0.12 * 224 <= min(object_sides(0.12)) + 8


def _box_aspect(alpha: np.ndarray) -> float:
    ys, xs = np.nonzero(alpha > 0.5)
    return (xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1)


def test_paste_widen_widens_the_pasted_object_and_leaves_the_default_draws_alone():
    """A disc looks the same at any rotation, so only the widening changes its box's width to height."""
    size = 224
    y, x = np.mgrid[0:size, 0:size]
    disc = (((x - 112) / 50) ** 2 + ((y - 112) / 50) ** 2 < 1).astype(np.float32)
    photo = np.full((size, size, 3), 60, np.uint8)
    background = np.full((size, size, 3), 200, np.float32)
    as_cut = [_box_aspect(_paste(photo, disc, background, np.random.default_rng(s), (0.5, 0.5))[1]) for s in range(20)]
    widened = [_box_aspect(_paste(photo, disc, background, np.random.default_rng(s), (0.5, 0.5), 16 / 9)[1])
               for s in range(20)]
    assert all(abs(a - 1) < 0.1 for a in as_cut)
    assert min(widened) > 0.9 and max(widened) < 16 / 9 + 0.1 and np.mean(widened) > 1.2
    # widen 1 draws nothing more: the same view as a recipe without the option
    plain = _paste(photo, disc, background, np.random.default_rng(7), (0.5, 0.5))[0]
    np.testing.assert_array_equal(plain, _paste(photo, disc, background, np.random.default_rng(7), (0.5, 0.5), 1.0)[0])


def test_paste_widen_is_bounded_and_part_of_the_cached_views_key():
    import pytest

    from trashure.config import TrainConfig
    from trashure.features import VIEW_SETTINGS
    from trashure.training.views import offline_settings

    for bad in (0.9, 3.5):
        with pytest.raises(ValueError, match="paste_widen"):
            TrainConfig(paste_widen=bad)
    assert TrainConfig().paste_widen == 1.0 and "paste_widen" in VIEW_SETTINGS
    assert offline_settings(TrainConfig(paste_widen=1.5)).paste_widen == 1.5


def test_a_slant_warps_the_object_in_perspective_and_keeps_its_size_on_average():
    from trashure.offline_augment import slanted

    w, h = 60, 100
    opaque = Image.new("RGBA", (w, h), (200, 40, 40, 255))
    areas, tapers = [], []
    for s in range(30):
        warped = slanted(opaque, np.random.default_rng(s), 0.25)
        assert warped.size == (90, 150)  # grown by the strength on every side: nothing cut off
        alpha = np.asarray(warped.getchannel("A"), np.float32) / 255
        areas.append(alpha.sum())
        rows = alpha.sum(axis=1)
        filled = np.nonzero(rows > 1)[0]
        tapers.append(abs(rows[filled[2]] - rows[filled[-3]]))  # a rectangle's rows are all as wide
    assert 0.85 < np.mean(areas) / (w * h) < 1.15
    assert np.median(tapers) > 3  # widths in pixels: the top and bottom edges differ, it is no longer a rectangle


def test_paste_perspective_is_a_setting_of_the_views_that_leaves_the_flat_draws_alone():
    import pytest

    from trashure.config import TrainConfig
    from trashure.features import VIEW_SETTINGS
    from trashure.training.views import offline_settings

    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError, match="paste_perspective"):
            TrainConfig(paste_perspective=bad)
    assert TrainConfig().paste_perspective == 0.0 and "paste_perspective" in VIEW_SETTINGS
    assert offline_settings(TrainConfig(paste_perspective=0.2)).paste_perspective == 0.2
    photo, _ = board_photo()
    alpha = board_mask(photo)
    flat = augment_view(photo, OfflineAugment(), view_rng(4, 0, 1), alpha)
    np.testing.assert_array_equal(flat, augment_view(photo, OfflineAugment(paste_perspective=0.0), view_rng(4, 0, 1),
                                                     alpha))
    slant = augment_view(photo, OfflineAugment(paste_perspective=0.3), view_rng(4, 0, 1), alpha)
    assert np.abs(slant.astype(int) - flat.astype(int)).mean() > 1
    # the same background, noise and place: only the object's shape moved, so most of the picture is unchanged
    assert (np.abs(slant.astype(int) - flat.astype(int)).max(axis=2) <= 2).mean() > 0.5


def test_another_draw_of_the_views_differs_and_draw_0_is_the_recipes_own():
    import pytest

    from trashure.config import TrainConfig
    from trashure.features import VIEW_SETTINGS
    from trashure.training.views import offline_batch, offline_settings, thread_pool

    # draw 0 is the generator every earlier run drew its views from, so their figures stay reproducible
    assert view_rng(5, 3, 2).random() == np.random.default_rng([5, 3, 2]).random()
    assert view_rng(5, 3, 2, 7).random() != view_rng(5, 3, 2).random()
    with pytest.raises(ValueError, match="view_draw"):
        TrainConfig(view_draw=-1)
    assert "view_draw" in VIEW_SETTINGS and offline_settings(TrainConfig(view_draw=7)).draw == 7
    photos = np.stack([board_photo(seed)[0] for seed in range(2)])
    masks = [(board_mask(p) * 255).astype(np.uint8) for p in photos]

    def views(draw: int) -> np.ndarray:
        with thread_pool() as pool:
            return offline_batch(photos, np.arange(2), masks, offline_settings(TrainConfig(view_draw=draw)), 42, 1,
                                 pool)

    np.testing.assert_array_equal(views(0), views(0))
    np.testing.assert_array_equal(views(7), views(7))
    assert np.abs(views(7).astype(int) - views(0).astype(int)).mean() > 5


def shadowed_board_photo(size: int = 224) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A red object and its grey shadow on a white board, the mask keeping both (as board_mask does on
    trashnet4); (photo, object, shadow)."""
    y, x = np.mgrid[0:size, 0:size]
    photo = np.full((size, size, 3), 220.0)
    obj = ((x - 100) / 30) ** 2 + ((y - 110) / 60) ** 2 < 1
    shadow = ~obj & (((x - 125) / 35) ** 2 + ((y - 120) / 60) ** 2 < 1)
    photo[shadow] = 130
    photo[obj] = [200, 30, 30]
    return photo.astype(np.uint8), obj, shadow


def test_the_shading_matte_keeps_the_coloured_object_as_paint_and_its_shadow_as_shading():
    photo, obj, shadow = shadowed_board_photo()
    alpha = (obj | shadow).astype(np.float32)
    paint, shading, gain = shading_matte(photo, alpha)
    assert paint[obj].min() > 0.99 and shading[obj].max() < 0.01
    assert shading[shadow].min() > 0.99 and paint[shadow].max() < 0.01
    np.testing.assert_allclose(gain[shadow], 133 / 223, atol=0.01)  # the shadow's brightness against the board
    assert paint[~(obj | shadow)].max() == 0 and shading[~(obj | shadow)].max() == 0  # nothing outside the mask


def test_a_shaded_paste_darkens_the_new_background_where_the_board_was_kept():
    photo, obj, shadow = shadowed_board_photo()
    alpha = (obj | shadow).astype(np.float32)
    blue = np.zeros((224, 224, 3), np.float32) + [40, 60, 200]
    painted, where = _paste(photo, alpha, blue, np.random.default_rng(5), (0.6, 0.6))
    shaded, shaded_where = _paste(photo, alpha, blue, np.random.default_rng(5), (0.6, 0.6), shading=True)
    np.testing.assert_allclose(where, shaded_where, atol=0.02)  # the same place: the object's whole footprint

    def grey(picture):  # the board's grey pasted as paint: r, g and b alike, and brighter than the blue's red
        return ((np.ptp(picture, axis=2) < 20) & (picture[..., 0] > 100)).sum()

    def red(picture):
        return ((picture[..., 0] > 150) & (picture[..., 1] < 80)).sum()

    assert grey(painted) > 1000 and grey(shaded) < 20
    assert abs(red(painted) - red(shaded)) <= 0.02 * red(painted) and red(shaded) > 1000
    # where the shadow lands the background stays blue, darker
    inside = shaded[(shaded_where > 0.9) & (shaded[..., 0] < 60)]  # the footprint less the red object
    assert len(inside) > 500 and np.median(inside[:, 2] - inside[:, 0]) > 60
    assert (inside[:, 2] > inside[:, 0] + 30).mean() > 0.95 and np.median(inside[:, 2]) < 160


def test_paste_shading_is_a_setting_of_the_views_that_leaves_other_draws_alone():
    import pytest

    from trashure.config import TrainConfig
    from trashure.features import VIEW_SETTINGS
    from trashure.training.views import offline_settings

    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="paste_shading_probability"):
            TrainConfig(paste_shading_probability=bad)
    assert TrainConfig().paste_shading_probability == 0.0 and "paste_shading_probability" in VIEW_SETTINGS
    assert TrainConfig.for_mode("exact").paste_shading_probability == 0.0
    assert TrainConfig.from_dict({"mode": "fast"}).paste_shading_probability == 0.0
    assert offline_settings(TrainConfig(paste_shading_probability=0.5)).shading_probability == 0.5
    photo, _ = board_photo()
    alpha = board_mask(photo)
    def views(settings: OfflineAugment) -> list[np.ndarray]:
        return [augment_view(photo, settings, view_rng(4, 0, view), alpha) for view in range(6)]

    as_cut, shaded = views(OfflineAugment()), views(OfflineAugment(shading_probability=1.0))
    for view, at_zero in zip(as_cut, views(OfflineAugment(shading_probability=0.0))):
        np.testing.assert_array_equal(view, at_zero)
    # the same background, place and noise: only the board's rim around the object changed
    changed = [np.abs(s.astype(int) - c.astype(int)).max(axis=2) > 2 for s, c in zip(shaded, as_cut)]
    assert any(c.mean() > 0.001 for c in changed) and all(c.mean() < 0.2 for c in changed)
