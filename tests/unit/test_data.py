"""Unit: datasets in their on-disk layouts, transforms, clear errors, the resumable loader."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data import (
    CelebADataModule,
    CIFAR10DataModule,
    DatasetError,
    ImageFolderDataModule,
    MNISTDataModule,
)
from ganlab.data.datasets import ImageFolder, read_idx, to_mode
from ganlab.data.loader import EpochSampler, ResumableLoader
from ganlab.utils.errors import UsageError
from tests.conftest import ROOT, rng_images


def first_batch(dm):
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def test_image_folder(image_dir):
    dm = ImageFolderDataModule(str(image_dir), image_size=32, channels=3, batch_size=8, num_workers=0)
    x = first_batch(dm)
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    assert -1 <= x.min() and x.max() <= 1
    assert len(dm.train_set) == 40  # nested jpg + png found, notes.txt ignored
    grey = first_batch(
        ImageFolderDataModule(str(image_dir), image_size=32, channels=1, batch_size=4, num_workers=0)
    )
    assert grey.shape == (4, 1, 32, 32)


def test_rgba_is_composited_on_white():
    transparent = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(to_mode(transparent, 3)).min() == 255


def test_augmentation_random_crop_and_flip(image_dir):
    dm = ImageFolderDataModule(
        str(image_dir),
        image_size=32,
        channels=3,
        batch_size=8,
        num_workers=0,
        load_size=40,
        random_crop=True,
        hflip=True,
    )
    t = dm.transform()
    names = [type(op).__name__ for op in t.transforms]
    assert names[:3] == ["Resize", "RandomCrop", "RandomHorizontalFlip"]
    dm.setup()
    ds = dm.train_dataloader().dataset  # SeededItems: augmentation is a function of (seed, epoch, i)
    assert torch.equal(ds[5], ds[5])
    views = {tuple(ds[5 + 40 * e].flatten()[:50].tolist()) for e in range(6)}
    assert len(views) > 1  # other epochs, other crops/flips
    with pytest.raises(ValueError, match="load_size"):
        ImageFolderDataModule(str(image_dir), image_size=64, load_size=32)


def test_missing_dir_names_path_and_fix(tmp_path):
    dm = ImageFolderDataModule(str(tmp_path / "nope"), how_to_get="Run `ganlab-fetch --dest data`.")
    with pytest.raises(
        DatasetError, match=r"dataset directory not found: '.*nope' \(data.root\): Run `ganlab-fetch"
    ):
        dm.setup()


def test_empty_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="no images"):
        ImageFolderDataModule(str(tmp_path)).setup()


def test_corrupt_image_names_the_file(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    dm = ImageFolderDataModule(str(tmp_path), image_size=32, batch_size=1, num_workers=0)
    with pytest.raises(
        DatasetError, match=r"(?s)1 of 2 image files .* cannot be read:\n  .*bad.jpg: .*skip_bad_images"
    ):
        dm.setup()  # at start, not when the sampler reaches the file
    # A file that breaks after the start-up check is still named when it is read.
    dm = ImageFolderDataModule(
        str(tmp_path), image_size=32, batch_size=1, num_workers=0, skip_bad_images=True
    )
    dm.setup()
    (tmp_path / "good.png").write_bytes(b"\x89PNG broken later")
    with pytest.raises(
        DatasetError, match=r"corrupt or unreadable image file '.*good.png'.*Delete or replace"
    ):
        next(iter(dm.train_dataloader()))


def write_bad_tree(root: Path) -> dict[str, str]:
    """Six good images and one of each kind of bad file; returns name -> a word of the reason."""
    for i, a in enumerate(rng_images(6, 40)):
        Image.fromarray(a).save(root / f"good{i}.{'png' if i % 2 else 'jpg'}")
    png = (root / "good1.png").read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    jpg = (root / "good0.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpg[: len(jpg) - 200])
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("a text file with an image name")
    return {
        "truncated.png": "Truncated",
        "truncated.jpg": "Truncated",
        "empty.jpg": "empty",
        "notes.png": "identify",
    }


def test_startup_scan_names_every_bad_file_or_skips_them(tmp_path, caplog):
    bad = write_bad_tree(tmp_path)
    with pytest.raises(DatasetError) as err:
        ImageFolderDataModule(str(tmp_path), image_size=32, batch_size=2, num_workers=0).setup()
    msg = str(err.value)
    assert "4 of 10 image files" in msg and "data.skip_bad_images=true" in msg
    for name, word in bad.items():
        assert name in msg and word in msg
    dm = ImageFolderDataModule(
        str(tmp_path), image_size=32, batch_size=2, num_workers=0, skip_bad_images=True
    )
    with caplog.at_level("WARNING"):
        dm.setup()
    assert len(dm.train_set) == 6 and "leaving out 4 unreadable" in caplog.text
    assert next(iter(dm.train_dataloader())).shape == (2, 3, 32, 32)


def test_scan_result_is_cached_by_the_file_list(tmp_path, monkeypatch):
    from ganlab.data import scan as scan_mod

    (tmp_path / "images").mkdir()
    write_bad_tree(tmp_path / "images")
    files = sorted((tmp_path / "images").iterdir())
    first = scan_mod.scan(files, tmp_path / "cache")
    monkeypatch.setattr(scan_mod, "check_file", lambda p: (_ for _ in ()).throw(AssertionError("rescanned")))
    assert scan_mod.scan(files, tmp_path / "cache") == first  # read back, no file opened
    (tmp_path / "images" / "good0.jpg").write_bytes(b"")  # the list's fingerprint changes
    with pytest.raises(AssertionError, match="rescanned"):
        scan_mod.scan(files, tmp_path / "cache")


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))  # dark to light
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # a 16-bit grey PNG
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I")
    ds = ImageFolder(tmp_path, channels=1, transform=np.asarray)
    a = ds[0]
    assert a.dtype == np.uint8 and a.min() == 0 and a.max() == 255
    assert abs(float(a.mean()) - 127.5) < 2  # a ramp, not 97% white
    assert (a == 255).mean() < 0.05


def test_images_smaller_than_the_training_size_are_counted(tmp_path, caplog):
    for i, a in enumerate(rng_images(4, 20)):
        Image.fromarray(a).save(tmp_path / f"small{i}.png")
    for i, a in enumerate(rng_images(4, 64)):
        Image.fromarray(a).save(tmp_path / f"big{i}.png")
    with caplog.at_level("WARNING"):
        ImageFolderDataModule(str(tmp_path), image_size=32, batch_size=2, num_workers=0).setup()
    assert "4 of 8 images" in caplog.text and "smaller than 32 px" in caplog.text


def test_too_few_images_for_a_batch(image_dir):
    """Training needs one full batch; evaluation reads the same module with fewer images."""
    dm = ImageFolderDataModule(str(image_dir), batch_size=64)
    dm.setup()
    assert dm.fingerprint()["n_images"] == 40
    with pytest.raises(DatasetError, match="fewer than one batch"):
        dm.train_dataloader()


def test_cifar10_class_filter(cifar_dir):
    dm = CIFAR10DataModule(str(cifar_dir), classes=["cat", "dog"], image_size=32, batch_size=4, num_workers=0)
    dm.setup()
    assert len(dm.train_set) == 5 * 4  # 100 train images, labels cycle 0..9: 2 classes -> 20
    assert first_batch(dm).shape == (4, 3, 32, 32)
    with pytest.raises(DatasetError, match="unknown CIFAR-10 classes"):
        CIFAR10DataModule(str(cifar_dir), classes=["unicorn"]).setup()


def test_cifar10_missing_files_are_named(tmp_path):
    with pytest.raises(DatasetError, match=r"CIFAR-10 files \['data_batch_1'.*data.download=true"):
        CIFAR10DataModule(str(tmp_path)).setup()


def test_cifar_pixels_survive_layout(cifar_dir):
    """Pixel (c, y, x) of the pickle's row-major CHW vector lands at (y, x, c)."""
    import pickle

    from ganlab.data.datasets import read_cifar10

    with open(cifar_dir / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f)["data"][0]
    img = read_cifar10(cifar_dir, None)[0][0]  # (images, labels) -> the first image
    assert img[3, 7, 2] == raw[2 * 1024 + 3 * 32 + 7]


def test_fashion_mnist_idx(idx_dir, tmp_path):
    dm = MNISTDataModule(str(idx_dir), image_size=32, channels=1, batch_size=8, num_workers=0)
    assert first_batch(dm).shape == (8, 1, 32, 32)
    assert read_idx(idx_dir / "train-images-idx3-ubyte.gz").shape == (48, 28, 28)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="corrupt IDX file"):
        MNISTDataModule(str(tmp_path), channels=1, batch_size=8).setup()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        MNISTDataModule(str(empty), channels=1, how_to_get="Run `make data`.").setup()


def test_celeba_layout_and_crop(celeba_dir):
    for root in (celeba_dir, celeba_dir / "img_align_celeba"):
        dm = CelebADataModule(str(root), image_size=64, batch_size=4, num_workers=0)
        assert first_batch(dm).shape == (4, 3, 64, 64)
    names = [type(op).__name__ for op in dm.transform().transforms]
    assert names[:3] == ["CenterCrop", "Resize", "CenterCrop"]  # crop the face, then resize
    with pytest.raises(DatasetError, match="img_align_celeba"):
        CelebADataModule(str(celeba_dir.parent / "missing")).setup()


def test_sampler_shards_and_is_deterministic(monkeypatch):
    s = EpochSampler(10, shuffle=True, seed=3)
    assert list(s) == list(EpochSampler(10, shuffle=True, seed=3))
    s.set_epoch(1)
    e1 = list(s)
    assert sorted(k - 10 for k in e1) == list(range(10))  # keys carry the epoch: 10 + i
    shards = []
    for rank in (0, 1, 2):
        monkeypatch.setattr("ganlab.data.loader._rank_world", lambda r=rank: (r, 3))
        s3 = EpochSampler(10, shuffle=True, seed=3)
        assert len(s3) == 3
        shards.append(list(s3))
    flat = [k for sh in shards for k in sh]
    assert len(flat) == len(set(flat)) == 9  # disjoint, cut to a multiple of the world size


def test_loader_resumes_mid_epoch(image_dir):
    dm = ImageFolderDataModule(str(image_dir), image_size=32, batch_size=8, num_workers=0)
    dm.setup()
    full = ResumableLoader(dm.train_set, batch_size=8, seed=1, drop_last=True)
    full.sampler.set_epoch(2)
    batches = list(full)
    head = ResumableLoader(dm.train_set, batch_size=8, seed=1, drop_last=True)
    head.sampler.set_epoch(2)
    it = iter(head)
    next(it), next(it)
    state = head.state_dict()
    assert state == {"epoch": 2, "batches": 2, "batch_size": 8}
    resumed = ResumableLoader(dm.train_set, batch_size=8, seed=1, drop_last=True)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == 3 and all(torch.equal(a, b) for a, b in zip(rest, batches[2:]))
    with pytest.raises(RuntimeError, match="same batch size"):
        ResumableLoader(dm.train_set, batch_size=4).load_state_dict(state)


def test_embedded_datasets_present():
    """`make data` fetched the real embedded sets (make test runs it first)."""
    root = ROOT / "data"
    assert len(list((root / "emoji-google-64").glob("*.png"))) == 3786
    assert read_idx(root / "fashion-mnist" / "train-images-idx3-ubyte.gz").shape == (60000, 28, 28)


def test_download_path_offline(tmp_path, monkeypatch, cifar_dir, idx_dir):
    """data.download=true hands over to torchvision's downloader (stubbed here: no network),
    then reads the layout it writes."""
    import shutil

    import torchvision.datasets as tvd

    calls = []

    def fake_cifar(root, train, download):
        calls.append(("cifar", root, train, download))
        shutil.copytree(cifar_dir / "cifar-10-batches-py", Path(root) / "cifar-10-batches-py")

    def fake_fashion(root, train, download):
        calls.append(("fashion", root, train, download))
        raw = Path(root) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        shutil.copy(idx_dir / "train-images-idx3-ubyte.gz", raw)

    monkeypatch.setattr(tvd, "CIFAR10", fake_cifar)
    monkeypatch.setattr(tvd, "FashionMNIST", fake_fashion)
    dm = CIFAR10DataModule(str(tmp_path / "c"), download=True, batch_size=4, num_workers=0)
    dm.prepare_data()
    dm.prepare_data()  # present now: no second download
    dm.setup()
    fm = MNISTDataModule(str(tmp_path / "f"), download=True, channels=1, batch_size=4, num_workers=0)
    fm.prepare_data()
    fm.setup()
    assert calls == [("cifar", str(tmp_path / "c"), True, True), ("fashion", str(tmp_path / "f"), True, True)]
    assert len(dm.train_set) == 100 and len(fm.train_set) == 48


def test_augment_batch_crops_and_flips():
    from torchvision.transforms.functional import center_crop

    from ganlab.data.cache import augment_batch

    imgs = torch.randint(0, 256, (64, 3, 40, 40), dtype=torch.uint8)
    keys = torch.arange(64) + 1000
    centre = augment_batch(imgs, keys, 32, random_crop=False, hflip=False, seed=0)
    assert torch.equal(centre, center_crop(imgs, [32, 32]).float() / 127.5 - 1)
    a = augment_batch(imgs, keys, 32, random_crop=True, hflip=True, seed=0)
    assert torch.equal(
        a, augment_batch(imgs, keys, 32, random_crop=True, hflip=True, seed=0)
    )  # keyed, stateless
    assert not torch.equal(a, augment_batch(imgs, keys + 64, 32, random_crop=True, hflip=True, seed=0))
    # Every output is some 32x32 window of its image, possibly mirrored.
    found_flip = found_offset = 0
    for i in range(64):
        windows = imgs[i].unfold(1, 32, 1).unfold(2, 32, 1)  # (3, 9, 9, 32, 32)
        out = ((a[i] + 1) * 127.5).round().to(torch.uint8)
        match = (windows == out[:, None, None]).all(dim=(0, 3, 4))
        match_f = (windows == out.flip(-1)[:, None, None]).all(dim=(0, 3, 4))
        assert match.any() or match_f.any()
        found_flip += int(match_f.any() and not match.any())
        found_offset += int(not (match[4, 4] or match_f[4, 4]))
    assert 16 < found_flip < 48 and found_offset > 32


def test_image_cache_matches_decoded_images_and_is_reused(image_dir, tmp_path):
    plain = ImageFolderDataModule(str(image_dir), image_size=32, batch_size=8, num_workers=0)
    plain.setup()
    cached = ImageFolderDataModule(
        str(image_dir), image_size=32, batch_size=8, num_workers=0, cache=True, cache_dir=str(tmp_path)
    )
    cached.setup()
    path = cached.cache_file
    assert path.is_file() and path.parent == tmp_path and cached.images.dtype == np.uint8
    images, keys = next(iter(cached.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (8, 3, 32, 32)
    batch = cached.on_after_batch_transfer((images, keys), 0)
    expected = torch.stack([plain.train_set[int(k) % 40] for k in keys])
    assert torch.allclose(batch, expected, atol=1e-6)  # the same pixels as the decode-every-time path
    mtime = path.stat().st_mtime_ns
    again = ImageFolderDataModule(
        str(image_dir), image_size=32, batch_size=8, num_workers=0, cache=True, cache_dir=str(tmp_path)
    )
    again.setup()
    assert again.cache_file == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt
    resident = ImageFolderDataModule(
        str(image_dir),
        image_size=32,
        batch_size=8,
        num_workers=0,
        cache=True,
        cache_dir=str(tmp_path),
        device_resident=True,
    )
    resident.setup()
    keys = next(iter(resident.train_dataloader()))
    assert keys.dtype == torch.int64 and keys.shape == (8,)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the conditional recipe ships this mode: no warning from it
        first = resident.on_after_batch_transfer(keys, 0)
    assert torch.allclose(first, torch.stack([plain.train_set[int(k) % 40] for k in keys]), atol=1e-6)
    with pytest.raises(ValueError, match="needs data.cache=true"):
        ImageFolderDataModule(str(image_dir), device_resident=True)


def test_max_images_is_one_fixed_random_subset_with_its_labels(image_dir):
    """data.max_images: the same images for every run (and seed), drawn across the classes rather
    than the first N of a class-sorted folder, labels cut alike; the cache key tells the sets apart."""

    def module(**kw):
        return ImageFolderDataModule(
            str(image_dir), image_size=32, conditional=True, batch_size=4, num_workers=0, **kw
        )

    full, cut, again = module(), module(max_images=12, seed=1), module(max_images=12, seed=2)
    for dm in (full, cut, again):
        dm.setup()
    assert len(cut.train_set) == 12 and cut.labels.tolist() == again.labels.tolist()
    assert len(set(cut.labels.tolist())) > 1  # the first 12 of the sorted folder are one class
    index = cut.train_set.base.index  # WithLabels(SubsetImages)
    assert cut.labels.tolist() == full.labels[index].tolist()
    image, label = cut.train_set[5]
    assert torch.equal(image, full.train_set[index[5]][0]) and label == full.labels[index[5]]
    assert cut.fingerprint()["n_images"] == 12 != full.fingerprint()["n_images"]
    with pytest.raises(UsageError, match=r"got 0 \(data.max_images\)"):
        module(max_images=0)
