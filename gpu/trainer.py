"""The Trainer with its arrays on a GPU: the same training loop, parameters, moments and batches on the device.

:class:`reference.train.Trainer` is written against the array namespace of its inputs, but it
builds them on the host: ``init_params`` and the data sources return NumPy arrays (randomness is
drawn on the host by design), and checkpoints are written from host arrays (safetensors).
:class:`DeviceTrainer` changes only where the arrays live:

* after initialisation (or resume) the parameters and AdamW's moments are copied to the device;
* every training and validation batch is copied to the device as it is drawn (the toy world's
  ground truth ``docs`` stays on the host: plug-ins build their biases ``like=`` the tokens);
* a checkpoint copies parameters and moments back to the host for the write, so a run saved on
  the GPU resumes on the CPU and the other way round.

Every step, loss, gradient, clip and update is the Trainer's own code running on CuPy arrays
(``reference.backend.namespace`` picks CuPy from them). Shards run one after the other
(``threads`` defaults to 1: a thread pool buys nothing on one device).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from reference.backend import to_host
from reference.data.batch import Batch
from reference.train import Trainer


def _to_cupy(value: Any) -> Any:
    import cupy

    return cupy.asarray(value)


class DeviceData:
    """A data source whose batches are copied to the device as they are drawn; everything else is the wrapped source's."""

    def __init__(self, data: Any, put: Callable[[Any], Any]):
        self.data = data
        self.put = put

    def __getattr__(self, name: str) -> Any:
        return getattr(self.data, name)

    def batch(self, batch: Batch) -> Batch:
        """(B, T) inputs and targets on the device; ``docs`` (host ground truth) unchanged."""
        return Batch(self.put(batch.inputs), self.put(batch.targets), batch.docs)

    def train_batch(self, step: int, batch_size: int, generator: Any) -> Batch:
        return self.batch(self.data.train_batch(step, batch_size, generator))

    def val_batches(self, n_batches: int, batch_size: int) -> list[Batch]:
        return [self.batch(b) for b in self.data.val_batches(n_batches, batch_size)]


class DeviceTrainer(Trainer):
    """:class:`reference.train.Trainer` on a GPU (see the module docstring); the constructor's arguments are the Trainer's.

    ``put`` and ``get`` move one array to the device and back (CuPy by default); the CPU tests
    pass a NumPy copy to check this glue without a device.
    """

    put: Callable[[Any], Any] = staticmethod(_to_cupy)
    get: Callable[[Any], Any] = staticmethod(to_host)

    def __init__(self, run: Any, run_dir: str | Path, *, threads: int | None = 1, **kwargs: Any):
        super().__init__(run, run_dir, threads=threads, **kwargs)
        self._move(self.put)

    @classmethod
    def resume(cls, run_dir: str | Path, *, threads: int | None = 1, **kwargs: Any) -> DeviceTrainer:
        self = super().resume(run_dir, threads=threads, **kwargs)
        self._move(self.put)
        return self

    def _move(self, move: Callable[[Any], Any]) -> None:
        """Parameters and both AdamW moments through ``move`` (to the device, or back to the host)."""
        self.params = {name: move(value) for name, value in self.params.items()}
        self.optimizer.m = {name: move(value) for name, value in self.optimizer.m.items()}
        self.optimizer.v = {name: move(value) for name, value in self.optimizer.v.items()}

    def _setup_data(self) -> None:
        super()._setup_data()  # host batches; the unigram baseline is computed from them
        self.data = DeviceData(self.data, self.put)
        self.val = [self.data.batch(b) for b in self.val]

    def checkpoint(self) -> None:
        """The Trainer's checkpoint, written from host copies; the device arrays stay in use."""
        params, m, v = self.params, self.optimizer.m, self.optimizer.v
        self._move(self.get)
        try:
            super().checkpoint()
        finally:
            self.params, self.optimizer.m, self.optimizer.v = params, m, v
