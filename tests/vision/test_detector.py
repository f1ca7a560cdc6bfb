import ncnn
import numpy as np
import pytest

from edge.vision.detector import detection_image, nms
from edge.vision.images import read_image
from tests.helpers import pipeline


def test_nms_keeps_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    assert list(nms(boxes, scores, 0.3, 10)) == [1, 2]
    assert list(nms(boxes, scores, 0.3, 1)) == [1]


@pytest.mark.parametrize(
    ("frame", "size", "padded"),
    [((480, 640), (320, 240), (320, 256)), ((1080, 1920), (320, 180), (320, 192))],
)
def test_detection_image_is_ncnns_resize_padded_with_black(frame, size, padded):
    rng = np.random.default_rng(7)
    source = rng.integers(0, 256, (*frame, 3), dtype=np.uint8)
    image = detection_image(source, size, padded)
    assert image.shape == (padded[1], padded[0], 3)
    assert not image[size[1] :].any() and not image[:, size[0] :].any()
    pixel = ncnn.Mat.PixelType.PIXEL_BGR
    theirs = np.array(ncnn.Mat.from_pixels_resize(source, pixel, frame[1], frame[0], *size))
    ours = image[: size[1], : size[0]].transpose(2, 0, 1).astype(np.float32)
    assert np.abs(ours - theirs).max() <= 1


def test_detection_image_of_a_frame_already_that_size_is_the_frame():
    source = np.arange(256 * 320 * 3, dtype=np.uint32).astype(np.uint8).reshape(256, 320, 3)
    assert np.array_equal(detection_image(source, (320, 256), (320, 256)), source)


def test_blank_frame_has_no_faces():
    assert pipeline().detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_real_photo_faces_are_in_full_frame_pixels(shared_data):
    image = read_image(shared_data / "face_recognition_examples/examples/obama-720p.jpg")
    small = pipeline().detect(image)  # default: detection on a 320 px copy
    full = pipeline("[detector]\ninput_size = 1280\n").detect(image)
    assert len(small) == 1 and len(full) == 1
    assert np.allclose(small[0].bbox, full[0].bbox, atol=full[0].width * 0.05)
    assert np.allclose(
        small[0].landmarks, full[0].landmarks, atol=full[0].width * 0.1
    )  # a 40 px face at 320 px
    x1, y1, x2, y2 = full[0].bbox
    for x, y in full[0].landmarks:
        assert x1 <= x <= x2 and y1 <= y <= y2


def test_lores_stream_maps_back_to_main_stream(shared_data):
    image = read_image(shared_data / "face_recognition_examples/examples/obama-720p.jpg")
    import cv2

    lores = cv2.resize(image, (320, 180), interpolation=cv2.INTER_AREA)
    from_lores = pipeline().detect(image, lores)
    direct = pipeline().detect(image)
    assert len(from_lores) == 1
    assert np.allclose(from_lores[0].bbox, direct[0].bbox, atol=direct[0].width * 0.05)


def test_two_people_are_both_found(shared_data):
    image = read_image(shared_data / "face_recognition_examples/examples/two_people.jpg")
    faces = pipeline().detect(image)
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
