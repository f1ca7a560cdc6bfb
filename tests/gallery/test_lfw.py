"""Enrol real people from LFW photos, then identify other photos, through the whole
pipeline (ncnn detector + aligner + quality gate + SFace embedder -> gallery -> matcher)."""

from __future__ import annotations

import pytest

from edge import cli
from edge.gallery.matcher import Matcher, MatcherConfig
from edge.gallery.store import Gallery
from edge.vision.images import read_image
from tests.helpers import pipeline

pytestmark = pytest.mark.data

ENROLLED = ("Ricardo_Lagos", "Paul_Wolfowitz")
ENROL_PHOTOS = 4


def identify(gallery: Gallery, path) -> str | None:
    """Name matched for the largest face in the photo (LFW centres the subject)."""
    pipe = pipeline()
    image = read_image(path)
    faces = pipe.detect(image)
    assert faces, f"no face found in {path}"
    face = max(faces, key=lambda f: f.width * f.height)
    return Matcher(gallery, MatcherConfig(), pipe.model_id).match(pipe.embed(image, face)).name


def test_enrol_from_lfw_photos_then_identify(shared_data, tmp_path, capsys):
    images = shared_data / "lfw_view1" / "images"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[gallery]\npath = "{tmp_path / "g.db"}"\nkey_file = "{tmp_path / "g.key"}"\n'
    )
    assert cli.main(["init", "--config", str(config)]) == 0
    held_out = {}
    for name in ENROLLED:
        photos = sorted((images / name).glob("*.jpg"))
        code = cli.main(
            ["enrol", "--config", str(config), "--name", name, *map(str, photos[:ENROL_PHOTOS])]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert f"enrolled {name}" in out
        held_out[name] = photos[ENROL_PHOTOS:]

    strangers = [
        sorted(folder.glob("*.jpg"))[0]
        for folder in sorted(images.iterdir())
        if folder.is_dir() and folder.name not in ENROLLED
    ][:15]  # the first one, Aby_Har-Even, scores 0.40 against Ricardo_Lagos
    with Gallery.open(tmp_path / "g.db", tmp_path / "g.key") as gallery:
        assert [p.name for p in gallery.people()] == list(ENROLLED)
        for name, photos in held_out.items():
            assert [identify(gallery, p) for p in photos] == [name] * len(photos)
        false_accepts = [p.name for p in strangers if identify(gallery, p) is not None]
        assert false_accepts == []
