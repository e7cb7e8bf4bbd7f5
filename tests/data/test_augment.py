"""Random crop and flip on uint8 image batches: shapes, content, seeding, and training batches only."""

from __future__ import annotations

import torch
from torch import nn

from tunelab.config.schema import Augment
from tunelab.data.augment import attach_image_input, augment_batch, horizontal_flip, random_crop, to_float


def _batch(n: int = 16) -> torch.Tensor:
    return torch.arange(n * 3 * 8 * 8, dtype=torch.float32).reshape(n, 3, 8, 8) % 251 + 1  # no zeros


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image() -> None:
    x = _batch()
    torch.manual_seed(0)
    out = random_crop(x, 2)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):
        windows = [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows), i
    assert not torch.equal(out, x)  # 16 images: some offset differs from the centre


def test_flip_mirrors_some_images_exactly_and_keeps_the_others() -> None:
    x = _batch(32)
    torch.manual_seed(1)
    out = horizontal_flip(x)
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(32)]
    kept = [torch.equal(out[i], x[i]) for i in range(32)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < 32


def test_the_same_seed_draws_the_same_augmentation() -> None:
    knobs = Augment(crop_padding=3, horizontal_flip=True)
    torch.manual_seed(7)
    a = augment_batch(_batch(), knobs)
    torch.manual_seed(7)
    b = augment_batch(_batch(), knobs)
    assert torch.equal(a, b)


def test_augmentation_runs_on_training_batches_only_and_inputs_become_floats() -> None:
    model = attach_image_input(nn.Identity(), Augment(crop_padding=2, horizontal_flip=True))
    x = torch.randint(1, 256, (16, 3, 8, 8), dtype=torch.uint8)
    model.eval()
    assert torch.equal(model(x), x.float() / 255)
    model.train()
    torch.manual_seed(0)
    out = model(x)
    assert out.dtype == torch.float32 and not torch.equal(out, x.float() / 255)
    assert torch.equal(to_float(out), out)  # floats pass unchanged
