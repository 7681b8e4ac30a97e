"""Offline augmentation against the plain-board shortcut: cut, paste, crop and phone-camera noise.

A model trained on objects on one white board learns the board. Following Dwibedi et al., "Cut, Paste and
Learn" (ICCV 2017), a photo whose border is a near-uniform board has its object cut out (pixels that
differ from a smooth fit of the border colour) and pasted, scaled, rotated and shadowed, onto a generated
background (`trashure.backgrounds`). Every view, pasted or not, then gets what phone photos vary in:
framing (random resized crop), colour, blur, sensor noise and JPEG quality.

These steps run in NumPy/Pillow on 224x224 uint8 photos before the model's own Keras augmentation
layers, and their results are cached as features like the other views. Each view's randomness comes from
(seed, photo index, view), so a run is reproducible and views can be made in any order or thread.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from trashure.backgrounds import load_textures, random_background, texture_background

BORDER = 6  # pixels of the frame that sample the board
FRAME_SCALE = (0.35, 0.85)  # a whole photo pasted as a sheet: its longer side as a part of the frame


# Objects cut from their boards to paste as clutter: (uint8 photo, uint8 alpha) pairs.
Clutter = list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class OfflineAugment:
    """What the offline step does to each augmented view (the clean view 0 is never touched)."""

    paste_probability: float = 1.0  # a plain-board photo is pasted onto a generated background
    photo_noise: bool = True  # random crop, colour jitter, blur, sensor noise, JPEG quality
    # The pasted object's longer side as a part of the frame, drawn log-uniformly: everyday photos show
    # litter small on a floor as often as close up.
    scale_range: tuple[float, float] = (0.12, 0.9)
    # The pasted object widened by a factor drawn log-uniformly from 1 to this: a board photo is landscape
    # (trashnet4's 512x384), so squashing it to a square narrows its object to 3/4 of its width, where a
    # portrait photo's (mixed4's, many phones') is widened by 4/3; up to 16/9 the paste looks as if taken
    # either way round. 1: as cut.
    paste_widen: float = 1.0
    # Each corner of a pasted object's box moved by up to this part of its width and height, either way (a
    # perspective warp: a floor photographed at a slant foreshortens what lies on it; see slanted). 0: flat.
    paste_perspective: float = 0.0
    # A share of pastes whose board-coloured pixels (the object's shadow on its board, the board seen through
    # clear plastic, which the board mask keeps) darken the new background as shading rather than being
    # painted on it as grey board (see shading_matte). 0: every paste painted as cut.
    shading_probability: float = 0.0
    scene_probability: float = 0.0  # a paste goes onto a training photo of `other` rather than a generated one
    # A paste that would go onto a generated background goes onto a photographed surface instead (see
    # trashure.backgrounds.texture_background)
    texture_probability: float = 0.0
    textures: str = ""  # the folder of those photographs ("": the package's own)
    # A photo the board mask cannot cut an object out of (white paper on the white board, and any photo off a
    # board) goes down whole, a sheet on the new background, so that a new background is no cue to the class.
    frame_paste_probability: float = 0.0
    # A camera-noise view turned grey: the object's shape and shading, not its colour or the scene's tint
    # (random greyscale, as in SimCLR's augmentation).
    grayscale_probability: float = 0.0
    # A view of an object whose place is known (cut out of its board) cropped to about half the frame
    # around a random point of it and enlarged: what the two-look model's close-up shows at prediction.
    closeup_probability: float = 0.0
    closeup_side: tuple[float, float] = (0.45, 0.55)
    # Clutter around the object (Dwibedi et al.'s distractors): a share of pasted views first gets one or two
    # objects of `other` cut from their own board photos, smaller, under the labelled object.
    distractor_probability: float = 0.0
    distractor_scale: tuple[float, float] = (0.08, 0.3)
    # A view whose amplitude spectrum is mixed with a generated background's, its phase kept (Xu et al.,
    # "A Fourier-based Framework for Domain Generalization", CVPR 2021): the object's shape and edges stay,
    # its colours, texture and contrast become another surface's, so that the board's are no cue.
    amplitude_mix_probability: float = 0.0
    # Which draw of the views (view_rng's fourth key; 0: the recipe's own)
    draw: int = 0

    @property
    def active(self) -> bool:
        return self.paste_probability > 0 or self.photo_noise


@lru_cache(maxsize=4)
def _frame(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column indices of the frame of width BORDER; the quadratic design over the frame; the design
    over the whole photo), made once per photo size."""
    mask = np.zeros((h, w), bool)
    mask[:BORDER], mask[-BORDER:], mask[:, :BORDER], mask[:, -BORDER:] = True, True, True, True
    ys, xs = np.nonzero(mask)
    everywhere = np.mgrid[0:h, 0:w]
    whole = _plane_design(np.stack([everywhere[0].ravel() / h, everywhere[1].ravel() / w], 1))
    return (ys, xs), _plane_design(np.stack([ys / h, xs / w], 1)), whole


def _plane_design(yx: np.ndarray) -> np.ndarray:
    y, x = yx[:, 0], yx[:, 1]
    return np.stack([np.ones_like(y), y, x, y * x, y * y, x * x], 1)


def _fit(design: np.ndarray, values: np.ndarray) -> np.ndarray:
    # The normal equations of a 6-term fit, well conditioned with coordinates in [0, 1]: a 6x6 solve
    # instead of lstsq's SVD of the whole frame, and the same masks on all 3,876 photos of the shared folders.
    return np.linalg.solve(design.T @ design, design.T @ values)


def board_mask(image: np.ndarray, max_border_spread: float = 18.0) -> np.ndarray | None:
    """Alpha (h, w) float32 of the object on a near-uniform board, or None when the photo has no plain
    board or no clear object. The board may be lit unevenly, so its colour is fitted as a quadratic
    surface over the frame, per channel; frame pixels that the object covers are left out of the fit
    (the object may touch the edge), but most of the frame must be board."""
    from scipy import ndimage

    h, w = image.shape[:2]
    frame, design, whole = _frame(h, w)
    colours = image[frame].astype(np.float32)
    # Start from the pixels near the frame's median colour (the board), then refit on the pixels that fit.
    board = np.abs(colours - np.median(colours, axis=0)).max(axis=1) < 40
    for _ in range(3):
        coef = _fit(design[board], colours[board])
        spread = np.abs(colours - design @ coef).max(axis=1)
        board = spread <= max_border_spread
        if board.mean() < 0.6:
            return None
    fitted = (whole @ coef).reshape(h, w, 3)
    distance = np.abs(image.astype(np.float32) - fitted).max(axis=2)
    threshold = max(25.0, 3.0 * float(np.percentile(spread[board], 90)))
    fg = ndimage.binary_opening(distance > threshold, iterations=2)
    fg = ndimage.binary_fill_holes(ndimage.binary_closing(fg, iterations=3))
    labels, n = ndimage.label(fg)
    if n == 0:
        return None
    areas = ndimage.sum(fg, labels, index=np.arange(1, n + 1))
    keep = labels == 1 + int(np.argmax(areas))
    # Scraps (a white object on a white board, found only in pieces) would teach odd shapes: skip.
    if areas.max() < 0.8 * areas.sum() or not 0.03 <= keep.mean() <= 0.85:
        return None
    return ndimage.gaussian_filter(keep.astype(np.float32), 1.0)


def paste_on_background(image: np.ndarray, alpha: np.ndarray, background: np.ndarray,
                        rng: np.random.Generator, scale_range: tuple[float, float] = (0.12, 0.9)) -> np.ndarray:
    """The masked object, rotated and scaled, with a soft shadow, composited onto background (float32)."""
    return _paste(image, alpha, background, rng, scale_range)[0]


def shading_matte(image: np.ndarray, alpha: np.ndarray, chroma_tolerance: tuple[float, float] = (0.03, 0.07)
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A cut-out split into paint and shading: (paint alpha, shading alpha, gain), each (h, w) float32.

    The board mask keeps what is darker than the board around the object, its shadow among it, and the board
    seen through clear plastic. Those pixels have the board's chromaticity; pasted as they are, they put a
    grey-white halo around every object, which no photo off the board has. Here a pixel of the mask within
    chroma_tolerance of the board's chromaticity (fading out between the two bounds) becomes shading: its
    brightness against the board (gain) multiplies whatever background it lands on. Coloured pixels stay paint.
    """
    rgb = image.astype(np.float32) + 3  # the offset steadies the chromaticity of near-black pixels
    board = alpha < 0.05
    board_rgb = np.median(rgb[board], axis=0) if board.any() else np.full(3, 230, np.float32)
    chroma = rgb / rgb.sum(axis=2, keepdims=True)
    distance = np.abs(chroma - board_rgb / board_rgb.sum()).max(axis=2)
    low, high = chroma_tolerance
    paint = np.clip((distance - low) / (high - low), 0, 1)
    gain = np.clip(rgb.mean(axis=2) / board_rgb.mean(), 0, 1.25)
    return (alpha * paint).astype(np.float32), (alpha * (1 - paint)).astype(np.float32), gain.astype(np.float32)


def _paste(image: np.ndarray, alpha: np.ndarray, background: np.ndarray, rng: np.random.Generator,
           scale_range: tuple[float, float], widen: float = 1.0,
           perspective: float = 0.0, shading: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """paste_on_background's picture and the pasted object's alpha (h, w) in it. shading: the object's
    board-coloured pixels darken the background (shading_matte) instead of being painted on it."""
    size = background.shape[0]
    ys, xs = np.nonzero(alpha > 0.05)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    paint, shade = alpha, None
    if shading:
        paint, shading_alpha, gain = shading_matte(image, alpha)
        # gain (up to 1.25) and the shading alpha ride in an RGB picture through the same geometry as the
        # object: RGB, not RGBA, so that resizing does not premultiply them by an alpha.
        shade = Image.fromarray(np.dstack([gain * 200, shading_alpha * 255, np.zeros_like(gain)])[y0:y1, x0:x1]
                                .round().astype(np.uint8), "RGB")
    rgba = np.dstack([image[y0:y1, x0:x1], (paint[y0:y1, x0:x1] * 255).astype(np.uint8)])
    # Any angle: litter lies on the floor every way round, not only as it stood on the board.
    angle = float(rng.uniform(-180, 180))
    obj = Image.fromarray(rgba, "RGBA").rotate(angle, Image.BILINEAR, expand=True)
    shade = shade.rotate(angle, Image.BILINEAR, expand=True) if shade is not None else None
    if widen > 1:  # drawn only when asked for, so that the views of a recipe without it stay the same draws
        factor = float(np.exp(rng.uniform(0, np.log(widen))))
        obj = obj.resize((max(1, round(obj.size[0] * factor)), obj.size[1]), Image.BILINEAR)
        shade = shade.resize(obj.size, Image.BILINEAR) if shade is not None else None
    longest = max(obj.size)  # the flat object's: a slant leaves the size drawn below as it is, on average
    if perspective > 0:  # its own generator (spawning draws nothing from rng): the view's other draws stay
        slant_rng = rng.spawn(1)[0]
        if shade is not None:
            shade = slanted(shade, copy.deepcopy(slant_rng), perspective)
        obj = slanted(obj, slant_rng, perspective)
    target = max(8, int(np.exp(rng.uniform(*np.log(scale_range))) * size))
    obj = obj.resize((max(1, obj.size[0] * target // longest), max(1, obj.size[1] * target // longest)),
                     Image.BILINEAR)
    ow, oh = obj.size
    # Keep at least ~80% of the object inside the frame.
    x = int(rng.integers(-ow // 10, max(size - ow + ow // 10, -ow // 10) + 1))
    y = int(rng.integers(-oh // 10, max(size - oh + oh // 10, -oh // 10) + 1))
    layer = _placed(np.asarray(obj, np.float32), x, y, size)
    a = layer[..., 3:] / 255.0
    if shade is not None:
        placed = _placed(np.asarray(shade.resize(obj.size, Image.BILINEAR), np.float32), x, y, size)
        shade_alpha, shade_gain = placed[..., 1:2] / 255.0, placed[..., 0:1] / 200.0
        footprint = np.clip(a + shade_alpha, 0, 1)
    else:
        footprint = a
    shadow = np.asarray(Image.fromarray((footprint[..., 0] * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(float(rng.uniform(3, 10)))), np.float32)[..., None] / 255.0
    shift = rng.integers(-6, 7, 2)
    shadow = np.roll(shadow, (int(shift[0]), int(shift[1])), axis=(0, 1))
    out = background * (1 - rng.uniform(0.15, 0.5) * shadow)
    if shade is not None:
        out = out * (1 - shade_alpha + shade_alpha * shade_gain)
    return out * (1 - a) + layer[..., :3] * a, footprint[..., 0]


def _placed(picture: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    """picture (h, w, c) on a zero canvas (size, size, c) with its top left corner at (x, y), clipped."""
    oh, ow = picture.shape[:2]
    canvas = np.zeros((size, size, picture.shape[2]), np.float32)
    sy0, sx0, dy0, dx0 = max(0, -y), max(0, -x), max(0, y), max(0, x)
    hh, ww = min(oh - sy0, size - dy0), min(ow - sx0, size - dx0)
    canvas[dy0:dy0 + hh, dx0:dx0 + ww] = picture[sy0:sy0 + hh, sx0:sx0 + ww]
    return canvas


def slanted(obj: Image.Image, rng: np.random.Generator, strength: float) -> Image.Image:
    """obj (RGBA) warped in perspective: each corner of its box moved by up to `strength` of the box's width
    and height, either way, on a canvas grown by that much on every side (the object keeps its size on
    average, and none of it is cut off)."""
    w, h = obj.size
    margin = np.array([strength * w, strength * h])
    box = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    quad = box + margin + rng.uniform(-1, 1, (4, 2)) * margin
    # PIL maps each output pixel (x, y) to the input (a x + b y + c, d x + e y + f) / (g x + h y + 1): the
    # eight coefficients that carry the quadrilateral's corners back onto the box's.
    rows = []
    for (x, y), (u, v) in zip(quad, box):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coefficients = np.linalg.solve(np.array(rows), box.ravel())
    size = (int(np.ceil(w + 2 * margin[0])), int(np.ceil(h + 2 * margin[1])))
    return obj.transform(size, Image.PERSPECTIVE, tuple(coefficients), Image.BILINEAR)


def closeup(image: np.ndarray, alpha: np.ndarray, rng: np.random.Generator,
            side_range: tuple[float, float] = (0.45, 0.55)) -> np.ndarray | None:
    """A square crop about half the frame wide, centred on a random point of the object (drawn by its
    alpha) and kept inside the frame, enlarged to the frame's size; None when the object has no pixels."""
    h, w = image.shape[:2]
    weights = alpha.ravel().astype(np.float64)
    total = weights.sum()
    if total <= 0:
        return None
    point = int(rng.choice(weights.size, p=weights / total))
    cy, cx = divmod(point, w)
    side = int(round(rng.uniform(*side_range) * min(h, w)))
    y0 = int(np.clip(cy - side // 2, 0, h - side))
    x0 = int(np.clip(cx - side // 2, 0, w - side))
    return _enlarge(image, y0, x0, side, side)


def random_resized_crop(image: np.ndarray, rng: np.random.Generator, min_area: float = 0.45) -> np.ndarray:
    h, w = image.shape[:2]
    area = rng.uniform(min_area, 1.0)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch, cw = min(h, int(round(h * np.sqrt(area / aspect)))), min(w, int(round(w * np.sqrt(area * aspect))))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return _enlarge(image, y0, x0, ch, cw)


def _enlarge(image: np.ndarray, y0: int, x0: int, ch: int, cw: int) -> np.ndarray:
    """The crop of image at (y0, x0), ch by cw, resized (bilinear) back to the image's size, as float32."""
    h, w = image.shape[:2]
    crop = Image.fromarray(np.clip(image[y0:y0 + ch, x0:x0 + cw], 0, 255).astype(np.uint8))
    return np.asarray(crop.resize((w, h), Image.BILINEAR), np.float32)


def phone_noise(image: np.ndarray, rng: np.random.Generator, grayscale_probability: float = 0.0) -> np.ndarray:
    """Colour, contrast, saturation, blur, sensor noise and JPEG quality of a phone camera; with
    grayscale_probability, the view turned grey."""
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    pil = ImageEnhance.Contrast(pil).enhance(float(rng.uniform(0.7, 1.3)))
    pil = ImageEnhance.Color(pil).enhance(float(rng.uniform(0.6, 1.4)))
    if rng.random() < 0.3:
        pil = pil.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5))))
    out = np.asarray(pil, np.float32) * rng.uniform(0.9, 1.1, 3)  # white balance
    if rng.random() < 0.3:
        out = out + rng.normal(0, rng.uniform(2, 8), out.shape)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(np.clip(out, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(25, 90)))
        out = np.asarray(Image.open(buf), np.float32)
    out = np.clip(out, 0, 255)
    if grayscale_probability > 0 and rng.random() < grayscale_probability:
        grey = np.asarray(Image.fromarray(out.astype(np.uint8)).convert("L"), np.float32)
        out = np.repeat(grey[..., None], 3, axis=2)
    return out


def amplitude_mix(image: np.ndarray, other: np.ndarray, strength: float) -> np.ndarray:
    """image (float32, h x w x 3) with its amplitude spectrum moved `strength` of the way to other's (same
    shape), per channel; the phase, which carries edges and shape, stays image's."""
    spectrum = np.fft.rfft2(image, axes=(0, 1))
    amplitude = (1 - strength) * np.abs(spectrum) + strength * np.abs(np.fft.rfft2(other, axes=(0, 1)))
    mixed = np.fft.irfft2(amplitude * np.exp(1j * np.angle(spectrum)), s=image.shape[:2], axes=(0, 1))
    return np.clip(mixed, 0, 255).astype(np.float32)


def scene_background(scenes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of a training photo with no object of a target class in it (a scene of `other`),
    flipped at random: real textures of cardboard, paper, floors."""
    scene = scenes[int(rng.integers(len(scenes)))]
    return random_resized_crop(scene[:, ::-1] if rng.random() < 0.5 else scene, rng, min_area=0.3).astype(np.float32)


def with_distractors(background: np.ndarray, distractors: Clutter, rng: np.random.Generator,
                     scale_range: tuple[float, float]) -> np.ndarray:
    """background with one or two of distractors ((uint8 photo, uint8 alpha) pairs) pasted onto it."""
    for _ in range(int(rng.integers(1, 3))):
        image, alpha = distractors[int(rng.integers(len(distractors)))]
        background = _paste(image, alpha.astype(np.float32) / 255, background, rng, scale_range)[0]
    return background


def augment_view(image: np.ndarray, settings: OfflineAugment, rng: np.random.Generator,
                 alpha: np.ndarray | None = None, scenes: np.ndarray | None = None,
                 distractors: Clutter | None = None) -> np.ndarray:
    """One offline-augmented view of a uint8 photo (uint8 out). alpha: its board_mask, if known;
    scenes: training photos that may serve as backgrounds (see scene_background); distractors: (photo,
    alpha) pairs of `other` objects cut from their boards, pasted as clutter."""
    out = image.astype(np.float32)
    pasted = False
    where = alpha  # the object's alpha in `out`, where known
    if alpha is not None and rng.random() < settings.paste_probability:
        size = image.shape[0]
        use_scene = scenes is not None and len(scenes) and rng.random() < settings.scene_probability
        background = scene_background(scenes, rng) if use_scene else new_background(settings, rng, size)
        # Drawn only when asked for, so that the views of a recipe without distractors stay the same draws.
        if distractors and settings.distractor_probability > 0 and rng.random() < settings.distractor_probability:
            background = with_distractors(background, distractors, rng, settings.distractor_scale)
        # Its own generator (spawning draws nothing from rng), so that the views of a recipe without shading
        # stay the same draws.
        shading = settings.shading_probability > 0 and rng.spawn(1)[0].random() < settings.shading_probability
        out, where = _paste(image, alpha, background, rng, settings.scale_range, settings.paste_widen,
                            settings.paste_perspective, shading)
        pasted = True
    # Drawn only when asked for, so that the views of a recipe without framed pastes stay the same draws.
    elif alpha is None and settings.paste_probability > 0 and settings.frame_paste_probability > 0 and (
            rng.random() < settings.frame_paste_probability):
        background = new_background(settings, rng, image.shape[0])
        out = _paste(image, np.ones(image.shape[:2], np.float32), background, rng, FRAME_SCALE)[0]
        pasted = True
    # Drawn only when asked for, so that the views of a recipe without close-ups stay the same draws.
    if where is not None and settings.closeup_probability > 0 and rng.random() < settings.closeup_probability:
        enlarged = closeup(out, where, rng, settings.closeup_side)
        if enlarged is not None:
            out, pasted = enlarged, True  # framed already: no random crop on top
    if settings.amplitude_mix_probability > 0:
        # Its own generator, spawned (which draws nothing from rng): every other draw of the view stays as it
        # is without the option, so a view either is the same or differs by the mix alone.
        mixer = rng.spawn(1)[0]
        if mixer.random() < settings.amplitude_mix_probability:
            # Up to half way: further, a small pasted object drowns in the background's texture.
            out = amplitude_mix(out, new_background(settings, mixer, out.shape[0]), float(mixer.uniform(0, 0.5)))
    if settings.photo_noise:
        if not pasted and rng.random() < 0.5:
            out = random_resized_crop(out, rng)
        out = phone_noise(out, rng, settings.grayscale_probability)
    return np.clip(out, 0, 255).astype(np.uint8)


def new_background(settings: OfflineAugment, rng: np.random.Generator, size: int) -> np.ndarray:
    # Drawn only when asked for, so that the views of a recipe without textures stay the same draws.
    if settings.texture_probability > 0 and rng.random() < settings.texture_probability:
        return texture_background(load_textures(settings.textures), rng, size)
    return random_background(rng, size)


def view_rng(seed: int, index: int, view: int, draw: int = 0) -> np.random.Generator:
    """The generator of one view of one photo; draw > 0: another draw of the same view (the recipe's own is 0)."""
    return np.random.default_rng([seed, index, view] if draw == 0 else [seed, index, view, draw])
