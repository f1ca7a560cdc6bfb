#!/usr/bin/env python3
"""Train the passive RGB liveness model and export it to ncnn in models_ncnn/.

The data is the NUAA Photograph Imposter database's training split (live webcam
frames and printed-photo attacks of subjects 0001-0009). Whole subjects are held
out for validation, so the numbers printed at the end are on faces the network
never saw. Faces are found with facegate's own detector and cut with the same
context crops the daemon uses (edge.liveness.crop), so training and the door agree.

The model looks at two crops of the face at different scales: the inner face at
0.8x the detected box, where skin and paper texture have the most pixels, and
1.4x the box, where a print's edge and the fingers that hold it show. Each branch
is trained on its own with a class-balanced loss; the exported network averages
their logits, so 0.5 is the balanced decision point. On unseen NUAA subjects the
two fail differently (close-up prints with little border fool the wide crop; the
inner one is less sure of some live faces), and the average beats either alone.

Augmentation aims at "not just one camera": colour and white balance, gamma,
blur, sensor noise, JPEG, a down-and-up resample that imitates a recapture by a
poorer camera, scale, shift, rotation and mirror. All of it is applied to both
classes, so none of it can become a spoof cue by itself.

Needs torch on the CPU (``pip install torch==2.13.0``) and pnnx
(``pip install --no-deps pnnx``); neither is needed on the device.

Usage: python scripts/train_liveness.py --data ../shared/data/nuaa_train
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge.config import default_config  # noqa: E402
from edge.images import read_image  # noqa: E402
from edge.liveness.crop import context_crop  # noqa: E402
from edge.liveness.metrics import error_rates, threshold_for_bpcer  # noqa: E402
from edge.liveness.rgb import PassiveRgb  # noqa: E402
from edge.models import ModelSpec, sha256_file, update_manifest  # noqa: E402
from edge.pipeline import Pipeline  # noqa: E402
from pnnx_convert import pnnx  # noqa: E402

MODEL_ID = "liveness_rgb_v2"
SIZE = 80
# Crop sides in detected-box sides, one network branch each (see the docstring).
# Wider crops (2.7, 4.0) did worse on unseen subjects: the network learnt the rooms.
SCALES = (0.8, 1.4)
# Crops are cut once with this much extra room so that scale, shift and rotation
# augmentation never need the full frame again.
ROOM = 1.5
# Share of live training samples turned into synthetic prints (see synthetic_print).
SYNTHETIC_PRINTS = 0.6
MEAN = 127.5
NORM = 1.0 / 128.0

TRAINING_DATA = {
    "name": "NUAA Photograph Imposter Database, training split (every 2nd frame)",
    "reference": "X. Tan, Y. Li, J. Liu, L. Jiang: Face Liveness Detection from a Single "
                 "Image with Sparse Low Rank Bilinear Discriminative Model, ECCV 2010",
    "licence_limits": "NUAA is distributed for research use; it grants no licence for "
                      "commercial use. These weights are derived from it: retrain with "
                      "scripts/train_liveness.py on data you hold rights to before a "
                      "commercial deployment.",
    "attacks": ["print"],
}


def subjects_of(path: Path) -> str:
    return path.name.split("_", 1)[0]


def list_frames(data: Path) -> list[tuple[Path, int, str]]:
    """(path, label, subject) for every NUAA frame; label 1 = live, 0 = printed photo."""
    frames = []
    for folder, label in (("ClientRaw", 1), ("ImposterRaw", 0)):
        for path in sorted((data / folder).glob("*/*.jpg")):
            frames.append((path, label, subjects_of(path)))
    if not frames:
        sys.exit(f"no frames under {data}/ClientRaw or {data}/ImposterRaw")
    return frames


def cut_crops(pipeline: Pipeline, frames: list[tuple[Path, int, str]]):
    """Room-sized crops (frame, scale, y, x, colour), labels and subjects of the frames
    where a face was found."""
    crops, labels, subjects, missed = [], [], [], 0
    room = int(round(SIZE * ROOM))
    for path, label, subject in frames:
        image = read_image(path)
        faces = pipeline.detect(image)
        if not faces:
            missed += 1
            continue
        face = max(faces, key=lambda f: f.width * f.height)
        crops.append([context_crop(image, face, scale * ROOM, room) for scale in SCALES])
        labels.append(label)
        subjects.append(subject)
    print(f"{len(crops)} faces cut, {missed} frames without a face")
    return np.stack(crops), np.array(labels, dtype=np.int64), np.array(subjects)


def centre(room_crop: np.ndarray) -> np.ndarray:
    """The crop the daemon sees: the middle of a room-sized crop at SIZE pixels."""
    return _warp(room_crop, 1.0, 0.0, 0.0, 0.0)


def _warp(room_crop: np.ndarray, zoom: float, angle: float, dx: float, dy: float) -> np.ndarray:
    room = room_crop.shape[0]
    k = SIZE * ROOM / room * zoom
    matrix = cv2.getRotationMatrix2D((room / 2.0 + dx * room, room / 2.0 + dy * room), angle, k)
    matrix[:, 2] += SIZE / 2.0 - room / 2.0 - np.array([dx * room, dy * room])
    return cv2.warpAffine(room_crop, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)


def augment(room_crop: np.ndarray, rng: random.Random) -> np.ndarray:
    image = _warp(room_crop, rng.uniform(0.85, 1.2), rng.uniform(-12, 12),
                  rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06))
    if rng.random() < 0.5:
        image = image[:, ::-1]
    x = image.astype(np.float32) / 255.0
    x = x * np.array([rng.uniform(0.8, 1.2) for _ in range(3)], np.float32)  # white balance
    x = (x - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)  # contrast, brightness
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.6, 1.4)  # saturation
    x = np.clip(x, 0.0, 1.0) ** rng.uniform(0.7, 1.4)  # gamma
    image = (x * 255.0).astype(np.uint8)
    if rng.random() < 0.4:  # a poorer camera: lose resolution, then upsample
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.3))
    if rng.random() < 0.4:
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 8), image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(30, 95)])
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(image)


def synthetic_print(live: np.ndarray, background: np.ndarray, scale: float,
                    rng: random.Random) -> np.ndarray:
    """A room-sized crop of a printed photo of ``live``'s face held up in ``background``.

    NUAA has few subjects; pasting a bordered, flattened, slightly warped portrait
    of one live face over another scene teaches the frame-in-a-scene cue of a print
    on many more faces and backgrounds than the real attacks cover.
    """
    room = live.shape[0]
    face = room / (scale * ROOM)  # the detected box's side in room pixels
    c = room / 2.0
    x1, x2 = int(c - rng.uniform(0.6, 1.0) * face), int(c + rng.uniform(0.6, 1.0) * face)
    y1, y2 = int(c - rng.uniform(0.7, 1.1) * face), int(c + rng.uniform(0.8, 1.4) * face)
    portrait = live[max(y1, 0):y2, max(x1, 0):x2].astype(np.float32)
    # Paper reflects a narrower range than a scene: less contrast and saturation.
    grey = portrait.mean(axis=2, keepdims=True)
    portrait = grey + (portrait - grey) * rng.uniform(0.5, 1.0)
    portrait = (portrait - 128.0) * rng.uniform(0.6, 1.0) + 128.0 + rng.uniform(-20, 30)
    pad = max(1, int(face * rng.uniform(0.05, 0.25)))
    white = rng.uniform(190, 255)
    photo = cv2.copyMakeBorder(np.clip(portrait, 0, 255).astype(np.uint8), pad, pad, pad, pad,
                               cv2.BORDER_CONSTANT, value=(white, white, white))
    h, w = photo.shape[:2]
    # The printed face lands where the detector would centre the crop; tilt the card.
    ox, oy = c - (c - max(x1, 0) + pad), c - (c - max(y1, 0) + pad)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = np.float32([[rng.uniform(-0.08, 0.08) * w, rng.uniform(-0.08, 0.08) * h]
                         for _ in range(4)])
    dst = src + np.float32([ox, oy]) + jitter
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(photo, matrix, (room, room))
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, (room, room))
    out = background.copy()
    out[mask > 127] = warped[mask > 127]
    return out


def to_tensor(images: np.ndarray):
    import torch

    x = (images.astype(np.float32) - MEAN) * NORM
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def build_net():
    import torch.nn as nn

    def conv_bn(cin, cout, stride, groups=1, kernel=3):
        return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    def separable(cin, cout, stride):
        return conv_bn(cin, cin, stride, groups=cin) + conv_bn(cin, cout, 1, kernel=1)

    class LivenessNet(nn.Module):
        """Depthwise-separable CNN, 80x80 BGR -> (spoof, live) logits."""

        def __init__(self):
            super().__init__()
            layers = conv_bn(3, 16, 2)                      # 40x40
            layers += separable(16, 32, 2)                  # 20x20
            layers += separable(32, 64, 1)
            layers += separable(64, 64, 2)                  # 10x10
            layers += separable(64, 128, 1)
            layers += separable(128, 128, 2)                # 5x5
            layers += separable(128, 128, 1)
            self.features = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.drop = nn.Dropout(0.3)
            self.head = nn.Linear(128, 2)

        def forward(self, x):
            x = self.pool(self.features(x)).flatten(1)
            return self.head(self.drop(x))

    return LivenessNet()


def fuse(branches):
    """One network over one crop per scale: the branches' mean logits -> probabilities."""
    import torch.nn as nn

    class MeanOfBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, *crops):
            logits = [net(x) for net, x in zip(self.branches, crops)]
            return (sum(logits) / len(logits)).softmax(dim=1)

    return MeanOfBranches()


def batch_of(crops, labels, idx, scale: float, rng: random.Random):
    """Augmented images and labels; some live samples become synthetic prints."""
    images, targets = [], []
    for j in idx:
        crop, label = crops[j], int(labels[j])
        if label == 1 and rng.random() < SYNTHETIC_PRINTS:
            background = crops[rng.randrange(len(crops))]
            crop, label = synthetic_print(crop, background, scale, rng), 0
        images.append(augment(crop, rng))
        targets.append(label)
    return np.stack(images), np.array(targets, dtype=np.int64)


def train(net, crops, labels, scale: float, epochs: int, seed: int) -> None:
    """Trains one branch on room-sized crops cut at ``scale``."""
    import torch

    rng = random.Random(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=5e-4)
    batch = 64
    steps = epochs * ((len(crops) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    # Balance the classes by weighting the loss, not by resampling.
    counts = np.bincount(labels, minlength=2)
    weight = torch.tensor(len(labels) / (2.0 * counts), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    order = list(range(len(crops)))
    for epoch in range(epochs):
        net.train()
        rng.shuffle(order)
        total, started = 0.0, time.perf_counter()
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            images, targets = batch_of(crops, labels, idx, scale, rng)
            x, y = to_tensor(images), torch.from_numpy(targets)
            loss = loss_fn(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        print(f"scale {scale}: epoch {epoch + 1:2d}/{epochs}  loss {total / len(order):.4f}  "
              f"{time.perf_counter() - started:.1f} s", flush=True)


def live_scores(net, images: list[np.ndarray]) -> np.ndarray:
    """The fused network's live probability for each frame; ``images`` holds one stack
    of centred crops per scale."""
    import torch

    net.eval()
    with torch.no_grad():
        return np.concatenate([
            net(*[to_tensor(stack[i:i + 256]) for stack in images])[:, 1].numpy()
            for i in range(0, len(images[0]), 256)])


def report(name: str, scores: np.ndarray, labels: np.ndarray) -> None:
    live, spoof = scores[labels == 1], scores[labels == 0]
    rates = error_rates(live, spoof, 0.5)
    iso = threshold_for_bpcer(live, 0.02)
    print(f"validation frames, {name}: at 0.5 BPCER {rates.bpcer:.2%} APCER(print) "
          f"{rates.apcer:.2%}; at BPCER <= 2% (threshold {iso:.3f}) APCER(print) "
          f"{error_rates(live, spoof, iso).apcer:.2%}")


def export(net, out: Path) -> tuple[Path, Path]:
    """TorchScript -> pnnx -> ncnn fp32; returns the param and bin written to ``out``."""
    import torch

    net.eval()
    with tempfile.TemporaryDirectory() as tmp:
        traced = torch.jit.trace(net, tuple(torch.zeros(1, 3, SIZE, SIZE) for _ in SCALES))
        script = Path(tmp) / f"{MODEL_ID}.pt"
        traced.save(str(script))
        shapes = ",".join([f"[1,3,{SIZE},{SIZE}]"] * len(SCALES))
        param, weights = pnnx(script, f"inputshape={shapes}")
        out.mkdir(parents=True, exist_ok=True)
        param_out, weights_out = out / param.name, out / weights.name
        param_out.write_bytes(param.read_bytes())
        weights_out.write_bytes(weights.read_bytes())
    return param_out, weights_out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the nuaa_train folder")
    parser.add_argument("--val-subjects", default="0007,0008,0009",
                        help="subjects held out for validation (comma-separated)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "models_ncnn")
    args = parser.parse_args()

    import torch

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(2)
    held_out = sorted(args.val_subjects.split(","))
    pipeline = Pipeline.from_config(default_config())
    crops, labels, subjects = cut_crops(pipeline, list_frames(args.data))
    is_val = np.isin(subjects, held_out)
    train_subjects = sorted(set(subjects[~is_val]))
    print(f"train: subjects {','.join(train_subjects)}, {int((~is_val).sum())} faces; "
          f"validation: subjects {','.join(held_out)}, {int(is_val.sum())} faces")

    train_crops, train_labels = crops[~is_val], labels[~is_val]
    val_labels = labels[is_val]
    val_images = [np.stack([centre(c[k]) for c in crops[is_val]]) for k in range(len(SCALES))]
    branches = []
    for k, scale in enumerate(SCALES):
        branch = build_net()
        train(branch, train_crops[:, k], train_labels, scale, args.epochs, args.seed + k)
        report(f"{scale}x crop alone", live_scores(fuse([branch]), val_images[k:k + 1]),
               val_labels)
        branches.append(branch)
    net = fuse(branches)
    params = sum(p.numel() for p in net.parameters())
    scores = live_scores(net, val_images)
    report(f"both crops ({params} parameters)", scores, val_labels)

    param, weights = export(net, args.out)
    entry = {
        "role": "liveness",
        "licence": "Apache-2.0 (code and architecture); see training_data.licence_limits",
        "parameters": params,
        "input": {"layout": "NCHW", "color": "BGR", "size": [SIZE, SIZE],
                  "mean": [MEAN] * 3, "norm": [NORM] * 3,
                  "crops": [{"blob": f"in{k}", "scale": scale} for k, scale in enumerate(SCALES)],
                  "note": "each crop: a square of scale x the detected box's longer side, "
                          "centred on the box; see edge/liveness/crop.py"},
        "outputs": {"probabilities": "out0", "live_index": 1},
        "training_data": {**TRAINING_DATA, "train_subjects": train_subjects,
                          "validation_subjects": held_out},
        "source": {"script": "scripts/train_liveness.py", "seed": args.seed,
                   "epochs": args.epochs, "torch": torch.__version__},
        "conversion": "torch.jit.trace -> pnnx fp16=0 (ncnn fp32)",
        "param": {"file": param.name, "sha256": sha256_file(param)},
        "bin": {"file": weights.name, "sha256": sha256_file(weights)},
    }
    # Check the export through the daemon's own wrapper before the manifest names it.
    runtime = PassiveRgb(ModelSpec(MODEL_ID, param, weights, entry["param"]["sha256"],
                                   entry["bin"]["sha256"], entry), threads=2)
    drift = max(abs(runtime.score_crops(frame_crops) - s)
                for frame_crops, s in zip(zip(*val_images), scores))
    print(f"ncnn vs torch on {len(scores)} validation faces: max |live score diff| {drift:.2e}")
    if drift > 1e-3:
        sys.exit("the ncnn export does not reproduce the torch model")
    update_manifest(args.out, {MODEL_ID: entry})
    print(f"wrote {param.name}, {weights.name} and the manifest entry {MODEL_ID} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
