"""Reading photos: the header is read first, so an image too big to decode, a truncated
file or a format facegate does not read is refused before decoding, with a one-line
reason; a fully transparent image is refused after."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from edge.errors import ImageError
from edge.gallery.enrolment import capture_from_images
from edge.vision.image_header import read_header
from edge.vision.images import read_image
from tests.gallery.test_enrolment import FakePipeline, photo
from tests.helpers import FACES

OBAMA = FACES / "obama_1.jpg"


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid PNG whose header declares width x height RGB pixels (the pixel
    data compresses a few all-zero rows to almost nothing: a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = zlib.compress(b"\0" * (1 + 3 * width) * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", rows)
        + chunk(b"IEND", b"")
    )


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(20000, 20000))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(
        ImageError,
        match=r"bomb.png: 20000 x 20000 is 400.0 million pixels, "
        r"more than the 50 million allowed",
    ):
        read_image(bomb)
    small = tmp_path / "small.png"
    small.write_bytes(png_claiming(3000, 2000))
    with pytest.raises(ImageError, match="6.0 million pixels, more than the 5 million"):
        read_image(small, max_pixels=5_000_000)


def test_a_file_bigger_than_any_allowed_image_is_not_even_read(tmp_path):
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(OBAMA.read_bytes() + b"\0" * 900_000)
    with pytest.raises(ImageError, match="MB is more than an image of 0.1 million pixels needs"):
        read_image(huge, max_pixels=100_000)


def test_a_truncated_jpeg_is_refused(tmp_path):
    data = OBAMA.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert cv2.imread(str(cut)) is not None  # OpenCV decodes it, grey at the bottom
    with pytest.raises(ImageError, match="cut.jpg: the JPEG file is truncated"):
        read_image(cut)
    assert read_image(OBAMA).shape == cv2.imread(str(OBAMA)).shape


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_a_fully_transparent_image_is_refused(tmp_path, suffix):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = 200
    clear = tmp_path / f"clear{suffix}"
    cv2.imwrite(str(clear), rgba, [cv2.IMWRITE_WEBP_QUALITY, 101] if suffix == ".webp" else [])
    with pytest.raises(ImageError, match="fully transparent"):
        read_image(clear)
    rgba[10, 10, 3] = 255  # one visible pixel: a (poor) image, not an empty one
    cv2.imwrite(str(clear), rgba, [cv2.IMWRITE_WEBP_QUALITY, 101] if suffix == ".webp" else [])
    assert read_image(clear).shape == (64, 64, 3)


def test_formats_facegate_does_not_read_are_refused_by_name(tmp_path):
    tiff = tmp_path / "photo.tif"
    cv2.imwrite(str(tiff), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ImageError, match="photo.tif: not a JPEG, PNG, WebP or BMP image"):
        read_image(tiff)


def test_every_format_read_gives_its_size_and_bgr_pixels(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
    for suffix in (".jpg", ".png", ".webp", ".bmp"):
        path = tmp_path / f"x{suffix}"
        cv2.imwrite(str(path), image)
        header = read_header(path.read_bytes())
        assert (header.width, header.height, header.complete) == (53, 37, True), suffix
        assert read_image(path).shape == (37, 53, 3)


def test_files_that_are_not_images_say_what_they_are(tmp_path):
    with pytest.raises(ImageError, match="missing.jpg: no such image file"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match=f"{tmp_path}: is a folder, not an image file"):
        read_image(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_photo_says_permission_denied(tmp_path):
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(OBAMA.read_bytes())
    locked.chmod(0)
    with pytest.raises(ImageError, match="locked.jpg: permission denied"):
        read_image(locked)


def test_one_refused_photo_does_not_stop_the_others(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(20000, 20000))
    verdicts = capture_from_images(FakePipeline(), [bomb, photo(tmp_path, "ok", seed=1)])
    assert verdicts[0].verdict.startswith("unreadable (")
    assert "400.0 million pixels" in verdicts[0].verdict
    assert verdicts[1].verdict == "ok"
