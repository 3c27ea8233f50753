"""Streaming prepared shards for training and evaluation (a LightningDataModule).

Training stream (`train_dataloader()`): infinite; it cycles over the subset, one *pass* at a
time. Each pass shuffles the shard order (the same order on every rank and loader worker,
seeded by (seed, pass)), splits the work between the consumers (ranks x loader workers), cuts
every utterance into crops and shuffles the crops through a buffer (seeded by (seed, pass,
consumer)). Splitting: by shard when the subset has at least as many shards as consumers, else
by sample (sample i of the pass goes to consumer i mod consumers), so small subsets split too;
either way no sample is read by two consumers in a pass and none is left out. Crops tile each
utterance from a random offset: with T frames and crop length c, floor(T / c) full crops start
at an offset drawn in [0, T mod c], and the pieces before and after them are kept as shorter
crops when they have at least `min_frames` frames, so a pass consumes ~every frame once.

Batches (apcscale.data.batching): each window of shuffled crops (`shuffle_buffer` of them, never
more than one pass) is sorted by length and cut into batches of neighbouring lengths, in
shuffled order (`batching="bucket"`, the default: little padding), or packed into rows
(`"pack"`), or batched in stream order (`"random"`, the old way). A batch holds `batch_size`
crops, or as many as keep its rows x steps within `batch_frames`. Crops are normalised with the
manifest statistics and zero-padded:

    {"feats": float32 (B, T, F), "lengths": int64 (n,), "n_frames": int (sum of lengths),
     "keys": [utterance key per crop], "starts": [first frame of each crop]}

where a padded batch has one crop per row (n = B, from step 0) and a packed batch adds
"rows" and "offsets" (int64 (n,)): crop i lies in row rows[i] from step offsets[i]
(apcscale.models.layout). The network computes on B x T frames; n_frames of them count.

`train_dataloader()` returns a `PersistentStream`: every iter() continues the same DataLoader
iterator, so the loader workers start once and a stream stopped at an evaluation point goes
on where it stopped. `iter_epoch()` gives one finite pass of the same pipeline (tests, probes).

Dev stream (`val_dataloader()`): finite and deterministic: every dev utterance cut into
consecutive chunks of at most `eval_crop_frames` frames (chunks shorter than `min_frames`
dropped), chunks sorted by length and batched (little padding), the batches dealt to the ranks
so that each rank gets the same number of batches and the ranks' union is the whole dev split.

Every sample read is checked: a shard that cannot be parsed, a sample failing its crc32, a
shard with fewer samples than the manifest lists raise ShardError naming the shard; a
feature matrix of the wrong size raises FeatureSizeError naming the shard and the sample.
"""

from __future__ import annotations

import io
import json
import random
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from webdataset.tariterators import group_by_keys, tar_file_iterator

from apcscale.data.batching import Batcher, BatchSpec
from apcscale.data.errors import FeatureSizeError, ShardError
from apcscale.data.manifest import Manifest

Crop = tuple[str, int, np.ndarray]  # (key, start frame, frames x F float16 view)

DEV_CACHE_BYTES = 256 << 20  # dev features kept in memory between evaluations up to this size


# ----------------------------------------------------------------------------------------------
# reading shards
# ----------------------------------------------------------------------------------------------


def read_shard(
    path: str | Path, feature_dim: int, expected: int | None = None, select: Callable[[int, str], bool] | None = None
) -> Iterator[tuple[str, np.ndarray, dict]]:
    """(key, features (frames, F) float16, metadata) of each sample of a shard, checked.

    `select(i, key)`: decode only the samples it accepts (the others are still counted).
    `expected`: the number of samples the manifest lists for the shard.
    """
    path = str(path)
    try:
        stream = open(path, "rb")
    except OSError as exc:
        raise ShardError(f"cannot open shard {path}: {exc}") from exc
    count = 0
    with stream:
        members = ({**m, "__url__": path} for m in tar_file_iterator(stream))
        samples = group_by_keys(members)
        while True:
            try:
                sample = next(samples)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - whatever tarfile raises on bad bytes
                raise ShardError(f"corrupt shard {path}: {exc}") from exc
            index, count = count, count + 1
            key = sample["__key__"]
            if select is not None and not select(index, key):
                continue
            feats, meta = decode_sample(path, key, sample, feature_dim)
            yield key, feats, meta
    if expected is not None and count != expected:
        raise ShardError(f"corrupt shard {path}: it holds {count} samples, the manifest lists {expected}")


def decode_sample(path: str, key: str, sample: dict, feature_dim: int) -> tuple[np.ndarray, dict]:
    if "npy" not in sample or "json" not in sample:
        raise ShardError(f"corrupt shard {path}: sample {key} lacks its .npy or .json member")
    try:
        meta = json.loads(sample["json"])
    except (ValueError, UnicodeDecodeError) as exc:
        raise ShardError(f"corrupt shard {path}: sample {key} has unreadable metadata ({exc})") from exc
    data = sample["npy"]
    if "crc32" in meta and zlib.crc32(data) != meta["crc32"]:
        raise ShardError(f"corrupt shard {path}: the features of sample {key} fail their crc32 check")
    try:
        feats = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise ShardError(f"corrupt shard {path}: the features of sample {key} are not a readable .npy ({exc})") from exc
    if feats.ndim != 2 or feats.shape[1] != feature_dim:
        raise FeatureSizeError(
            f"shard {path}: sample {key} has features of shape {tuple(feats.shape)}, "
            f"but the manifest says frames x {feature_dim}"
        )
    if "n_frames" in meta and meta["n_frames"] != feats.shape[0]:
        raise ShardError(
            f"corrupt shard {path}: sample {key} has {feats.shape[0]} frames, its metadata says {meta['n_frames']}"
        )
    return feats, meta


# ----------------------------------------------------------------------------------------------
# crops and batches
# ----------------------------------------------------------------------------------------------


def tile(n_frames: int, crop: int, min_frames: int, rng: random.Random) -> list[tuple[int, int]]:
    """(start, length) pieces covering [0, n_frames) from a random offset; pieces < min_frames dropped."""
    if n_frames <= crop:
        return [(0, n_frames)] if n_frames >= min_frames else []
    full = n_frames // crop
    rest = n_frames - full * crop
    offset = rng.randint(0, rest)
    pieces = [(0, offset)] if offset >= min_frames else []
    pieces += [(offset + i * crop, crop) for i in range(full)]
    tail = rest - offset
    if tail >= min_frames:
        pieces.append((offset + full * crop, tail))
    return pieces


def collate(items: list[Crop], mean: np.ndarray, inv_std: np.ndarray) -> dict[str, Any]:
    """Normalise and zero-pad crops into a batch (numpy: no torch thread pool for small arrays)."""
    lengths = np.array([x.shape[0] for _, _, x in items], dtype=np.int64)
    feats = np.zeros((len(items), int(lengths.max()), mean.shape[0]), dtype=np.float32)
    for i, (_, _, x) in enumerate(items):
        row = feats[i, : x.shape[0]]
        np.subtract(x, mean, out=row)
        row *= inv_std
    return {
        "feats": torch.from_numpy(feats),
        "lengths": torch.from_numpy(lengths),
        "n_frames": int(lengths.sum()),
        "keys": [k for k, _, _ in items],
        "starts": [s for _, s, _ in items],
    }


def collate_rows(rows: list[list[Crop]], mean: np.ndarray, inv_std: np.ndarray) -> dict[str, Any]:
    """Normalise crops packed back to back into rows (a packed batch, with each crop's row and offset)."""
    width = max(sum(x.shape[0] for _, _, x in row) for row in rows)
    feats = np.zeros((len(rows), width, mean.shape[0]), dtype=np.float32)
    lengths, where, keys, starts = [], [], [], []
    for r, row in enumerate(rows):
        offset = 0
        for key, start, x in row:
            out = feats[r, offset : offset + x.shape[0]]
            np.subtract(x, mean, out=out)
            out *= inv_std
            lengths.append(x.shape[0])
            where.append((r, offset))
            keys.append(key)
            starts.append(start)
            offset += x.shape[0]
    lengths_np = np.array(lengths, dtype=np.int64)
    where_np = np.array(where, dtype=np.int64).reshape(-1, 2)
    return {
        "feats": torch.from_numpy(feats),
        "lengths": torch.from_numpy(lengths_np),
        "n_frames": int(lengths_np.sum()),
        "keys": keys,
        "starts": starts,
        "rows": torch.from_numpy(where_np[:, 0].copy()),
        "offsets": torch.from_numpy(where_np[:, 1].copy()),
    }


def _normaliser(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(mean, dtype=np.float32), (1.0 / np.asarray(std, dtype=np.float64)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# the training stream
# ----------------------------------------------------------------------------------------------


class TrainStream(IterableDataset):
    """Crops of a subset's shards for one rank, in batches; infinite when `cycle`, else one pass.

    Picklable (loader workers get a copy); the worker id comes from torch's worker info, the
    rank and world size are given by the main process.
    """

    def __init__(
        self,
        shards: list[tuple[str, int]],
        *,
        feature_dim: int,
        mean: np.ndarray,
        std: np.ndarray,
        crop_frames: int,
        min_frames: int,
        batch: BatchSpec,
        shuffle_buffer: int,
        seed: int,
        rank: int,
        world_size: int,
        cycle: bool = True,
        first_pass: int = 0,
    ):
        self.shards = list(shards)
        self.feature_dim = feature_dim
        self.mean, self.std = np.asarray(mean), np.asarray(std)
        self.crop_frames, self.min_frames = crop_frames, min_frames
        self.batch, self.shuffle_buffer = batch, shuffle_buffer
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.cycle, self.first_pass = cycle, first_pass

    def consumer(self) -> tuple[int, int]:
        """(this consumer's index, number of consumers) over ranks x loader workers."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank * workers + worker, self.world_size * workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        me, consumers = self.consumer()
        mean, inv_std = _normaliser(self.mean, self.std)
        batcher = Batcher(self.batch, random.Random(f"apcscale/{self.seed}/{self.first_pass}/{me}/batches"))
        make = collate_rows if self.batch.batching == "pack" else collate
        window_size = max(1, self.shuffle_buffer)
        n_pass = self.first_pass
        while True:
            produced = 0
            window: list[Crop] = []
            for item in self.crops(n_pass, me, consumers):
                produced += 1
                window.append(item)
                if len(window) == window_size:
                    for batch in batcher.add(window):
                        yield make(batch, mean, inv_std)
                    window = []
            if window:  # a window never spans two passes
                for batch in batcher.add(window):
                    yield make(batch, mean, inv_std)
            if not self.cycle:
                break
            if produced == 0:
                raise RuntimeError(
                    f"training consumer {me} of {consumers} (rank {self.rank}) got no crops in a "
                    f"whole pass over {len(self.shards)} shard(s): the subset is too small for "
                    "this many ranks x loader workers (use fewer workers or a larger subset)"
                )
            n_pass += 1
        for batch in batcher.flush():
            yield make(batch, mean, inv_std)

    def crops(self, n_pass: int, me: int, consumers: int) -> Iterator[Crop]:
        """This consumer's shuffled crops of one pass."""
        order = list(range(len(self.shards)))
        random.Random(f"apcscale/{self.seed}/{n_pass}").shuffle(order)
        by_shard = len(self.shards) >= consumers
        mine = order[me::consumers] if by_shard else order
        rng = random.Random(f"apcscale/{self.seed}/{n_pass}/{me}")
        buffer: list[Crop] = []
        size = max(1, self.shuffle_buffer)
        seen = 0  # samples of the pass so far (by-sample split)

        def select(_i: int, _key: str) -> bool:
            nonlocal seen
            seen += 1
            return by_shard or (seen - 1) % consumers == me

        for s in mine:
            path, n = self.shards[s]
            for key, feats, _ in read_shard(path, self.feature_dim, n, select):
                for start, length in tile(feats.shape[0], self.crop_frames, self.min_frames, rng):
                    item = (key, start, feats[start : start + length])
                    if len(buffer) < size:
                        buffer.append(item)
                        continue
                    j = rng.randrange(size)
                    yield buffer[j]
                    buffer[j] = item
        rng.shuffle(buffer)
        yield from buffer


class PersistentStream:
    """What `train_dataloader()` returns: each iter() continues one DataLoader iterator.

    Loader workers start once; a consumer that stops iterating (an evaluation point) and
    iterates again gets the next batch, never a restarted stream. No __len__: infinite.
    """

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self._it: Iterator | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._it is None:
            self._it = iter(self.loader)
        it = self._it
        while self._it is it:  # a closed stream ends the iterations still holding it
            try:
                batch = next(it)
            except StopIteration:
                return
            yield batch

    def close(self) -> None:
        it, self._it = self._it, None
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


# ----------------------------------------------------------------------------------------------
# the dev stream
# ----------------------------------------------------------------------------------------------


def dev_batches(
    samples: list[tuple[str, int]], eval_crop: int, min_frames: int, batch_size: int, world_size: int
) -> list[list[tuple[str, int, int]]]:
    """All dev chunks (key, start, length) in length-sorted batches; a multiple of world_size of them
    when there are enough chunks (the largest batches are halved until the count divides)."""
    chunks = []
    for key, n in samples:
        for start in range(0, n, eval_crop):
            length = min(eval_crop, n - start)
            if length >= min_frames:
                chunks.append((key, start, length))
    chunks.sort(key=lambda c: (-c[2], c[0], c[1]))
    batches = [chunks[i : i + batch_size] for i in range(0, len(chunks), batch_size)]
    while len(batches) % world_size and len(chunks) >= world_size:
        i = max(range(len(batches)), key=lambda b: (len(batches[b]), -b))
        if len(batches[i]) < 2:
            break
        half = len(batches[i]) // 2
        batches[i : i + 1] = [batches[i][:half], batches[i][half:]]
    return batches


class DevStream:
    """One rank's share of the dev batches, in a fixed order (an iterable with a length).

    Read in the main process: the dev split is read once and kept in memory when small
    (DEV_CACHE_BYTES), else re-read from its shards at each evaluation.
    """

    def __init__(
        self,
        shards: list[tuple[str, int]],
        batches: list[list[tuple[str, int, int]]],
        *,
        feature_dim: int,
        mean: np.ndarray,
        std: np.ndarray,
        cache: bool,
    ):
        self.shards, self.batches = shards, batches
        self.feature_dim = feature_dim
        self.mean, self.std = np.asarray(mean), np.asarray(std)
        self.cache = cache
        self._feats: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.batches)

    def _load(self) -> dict[str, np.ndarray]:
        if self._feats is not None:
            return self._feats
        needed = {key for batch in self.batches for key, _, _ in batch}
        feats = {}
        for path, n in self.shards:
            for key, f, _ in read_shard(path, self.feature_dim, n, lambda _i, k: k in needed):
                feats[key] = f
        missing = needed - set(feats)
        if missing:
            raise ShardError(f"dev shards lack {len(missing)} sample(s) their index lists, e.g. {sorted(missing)[0]}")
        if self.cache:
            self._feats = feats
        return feats

    def __iter__(self) -> Iterator[dict[str, Any]]:
        feats = self._load()
        mean, inv_std = _normaliser(self.mean, self.std)
        for batch in self.batches:
            items = []
            for key, start, length in batch:
                x = feats[key][start : start + length]
                if x.shape[0] != length:
                    raise ShardError(f"dev sample {key} has {feats[key].shape[0]} frames, its shard index says more")
                items.append((key, start, x))
            yield collate(items, mean, inv_std)


# ----------------------------------------------------------------------------------------------
# the data module
# ----------------------------------------------------------------------------------------------


class APCDataModule(L.LightningDataModule):
    """Streams a prepared manifest's training subset and dev split (see the module docstring).

    subset: a nested training subset (d0 smallest ... dK all training audio; None: the largest).
    crop_frames: training crop length; eval_crop_frames: dev chunk length.
    batching: bucket (default), pack or random (apcscale.data.batching).
    batch_size: crops per batch; batch_frames: else, frames per batch (rows x steps of its
    tensor); neither: 32 crops. eval_batch_size: dev chunks per batch (default batch_size or 32).
    """

    def __init__(
        self,
        manifest: str | Path,
        subset: str | None = None,
        crop_frames: int = 256,
        batch_size: int | None = None,
        num_workers: int = 2,
        seed: int = 0,
        shuffle_buffer: int = 1000,
        eval_crop_frames: int = 2000,
        min_frames: int = 4,
        pin_memory: bool = False,
        eval_batch_size: int | None = None,
        batch_frames: int | None = None,
        batching: str = "bucket",
    ):
        super().__init__()
        for name, value, low in (
            ("crop_frames", crop_frames, 1),
            ("batch_size", batch_size, 1),
            ("batch_frames", batch_frames, 1),
            ("num_workers", num_workers, 0),
            ("shuffle_buffer", shuffle_buffer, 1),
            ("eval_crop_frames", eval_crop_frames, 1),
            ("min_frames", min_frames, 1),
        ):
            if value is not None and int(value) < low:
                raise ValueError(f"APCDataModule: {name} must be >= {low}, got {value}")
        if min_frames > min(crop_frames, eval_crop_frames):
            raise ValueError(f"APCDataModule: min_frames ({min_frames}) exceeds the crop lengths")
        if batch_size is None and batch_frames is None:
            batch_size = 32
        try:
            self.batch = BatchSpec(
                batching=batching,
                batch_size=None if batch_size is None else int(batch_size),
                batch_frames=None if batch_frames is None else int(batch_frames),
                row_frames=int(crop_frames),
            )
        except ValueError as exc:
            raise ValueError(f"APCDataModule: {exc}") from None
        self.manifest_path = Path(manifest)
        self.subset = subset
        self.crop_frames, self.num_workers = int(crop_frames), int(num_workers)
        self.batch_size, self.batch_frames, self.batching = self.batch.batch_size, self.batch.batch_frames, batching
        self.seed, self.shuffle_buffer = int(seed), int(shuffle_buffer)
        self.eval_crop_frames, self.min_frames = int(eval_crop_frames), int(min_frames)
        self.eval_batch_size = int(eval_batch_size or batch_size or 32)
        self.pin_memory = bool(pin_memory)
        self.manifest: Manifest | None = None
        self._train: PersistentStream | None = None
        self._dev: DevStream | None = None
        self._dev_rank: tuple[int, int] | None = None

    # ---------------------------------------------------------------------------- setting up

    def setup(self, stage: str | None = None) -> None:
        if self.manifest is not None:
            return
        m = Manifest.load(self.manifest_path)
        self.subset_name = self.subset or m.largest_subset
        self.subset_info = m.subset(self.subset_name)
        m.verify(self.subset_info["shards"] + m.dev["shards"])
        self._train_shards = [
            (str(m.shard_path(n)), int(m.shards[n]["utterances"])) for n in self.subset_info["shards"]
        ]
        self._dev_shards = [(str(m.shard_path(n)), int(m.shards[n]["utterances"])) for n in m.dev["shards"]]
        self._dev_samples = [(s["key"], int(s["n_frames"])) for s in m.samples("dev")]
        self._mean, self._std = m.mean, m.std
        self._dev_batches_all = dev_batches(
            self._dev_samples, self.eval_crop_frames, self.min_frames, self.eval_batch_size, 1
        )
        self.manifest = m

    def _need_setup(self) -> Manifest:
        if self.manifest is None:
            self.setup()
        assert self.manifest is not None
        return self.manifest

    @property
    def feature_dim(self) -> int:
        return self._need_setup().feature_dim

    @property
    def mean(self) -> torch.Tensor:
        return torch.tensor(self._need_setup().mean, dtype=torch.float32)

    @property
    def std(self) -> torch.Tensor:
        return torch.tensor(self._need_setup().std, dtype=torch.float32)

    @property
    def subset_frames(self) -> int:
        self._need_setup()
        return int(self.subset_info["frames"])

    @property
    def subset_hours(self) -> float:
        self._need_setup()
        return float(self.subset_info["hours"])

    @property
    def subset_utterances(self) -> int:
        self._need_setup()
        return int(self.subset_info["utterances"])

    @property
    def dev_frames(self) -> int:
        """Frames one dev evaluation covers (all ranks together)."""
        self._need_setup()
        return sum(length for batch in self._dev_batches_all for _, _, length in batch)

    def distributed(self) -> tuple[int, int]:
        """(rank, world size): from the attached trainer, else torch.distributed, else (0, 1)."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return int(trainer.global_rank), int(trainer.world_size)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    # ------------------------------------------------------------------------------- training

    def train_dataset(
        self,
        *,
        rank: int | None = None,
        world_size: int | None = None,
        cycle: bool = True,
        first_pass: int = 0,
        num_workers: int | None = None,
    ) -> TrainStream:
        self._need_setup()
        if rank is None or world_size is None:
            rank, world_size = self.distributed()
        workers = self.num_workers if num_workers is None else num_workers
        consumers = world_size * max(1, workers)
        if self.subset_utterances < consumers:
            raise ValueError(
                f"subset {self.subset_name} has {self.subset_utterances} utterances, fewer than "
                f"{world_size} rank(s) x {max(1, workers)} loader worker(s); use fewer workers"
            )
        return TrainStream(
            self._train_shards,
            feature_dim=self.feature_dim,
            mean=self._mean,
            std=self._std,
            crop_frames=self.crop_frames,
            min_frames=self.min_frames,
            batch=self.batch,
            shuffle_buffer=self.shuffle_buffer,
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            cycle=cycle,
            first_pass=first_pass,
        )

    def _loader(self, dataset: IterableDataset, num_workers: int, persistent: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=None,
            num_workers=num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=persistent and num_workers > 0,
        )

    def train_dataloader(self) -> PersistentStream:
        """The infinite training stream of this rank (one persistent DataLoader iterator)."""
        if self._train is None:
            self._train = PersistentStream(self._loader(self.train_dataset(), self.num_workers, persistent=True))
        return self._train

    def iter_epoch(
        self, n_pass: int = 0, *, rank: int | None = None, world_size: int | None = None, num_workers: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """One finite pass (`n_pass`) of this rank's training pipeline, with its own loader workers."""
        workers = self.num_workers if num_workers is None else num_workers
        ds = self.train_dataset(rank=rank, world_size=world_size, cycle=False, first_pass=n_pass, num_workers=workers)
        it = iter(self._loader(ds, workers, persistent=False))
        try:
            yield from it
        finally:
            shutdown = getattr(it, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()

    # ------------------------------------------------------------------------------------ dev

    def dev_dataset(self, *, rank: int | None = None, world_size: int | None = None) -> DevStream:
        self._need_setup()
        if rank is None or world_size is None:
            rank, world_size = self.distributed()
        if self._dev is not None and self._dev_rank == (rank, world_size):
            return self._dev
        batches = dev_batches(
            self._dev_samples, self.eval_crop_frames, self.min_frames, self.eval_batch_size, world_size
        )
        mine = batches[rank::world_size]
        frames = sum(length for batch in mine for _, _, length in batch)
        cache = frames * self.feature_dim * 2 <= DEV_CACHE_BYTES
        self._dev = DevStream(
            self._dev_shards, mine, feature_dim=self.feature_dim, mean=self._mean, std=self._std, cache=cache
        )
        self._dev_rank = (rank, world_size)
        return self._dev

    def val_dataloader(self) -> DevStream:
        """The whole dev split (this rank's share), deterministic, length-sorted batches."""
        return self.dev_dataset()

    def teardown(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self._train is not None:
            self._train.close()
            self._train = None
