"""train_cohort equals train_one per member, padded units stay exactly zero, members leave the stack.

Tolerance: the cohort multiplies with ``baddbmm`` where ``train_one`` uses ``addmm``, so
float32 sums are ordered differently. Over these runs weights agree to 2e-4 absolute,
validation metrics to 1e-4, and the best epoch and epochs run exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tunefleet import updates
from tunefleet.catalog import dataset_conf
from tunefleet.cohort import _member_networks, stack_members, train_cohort
from tunefleet.cohort_plan import cohort_groups
from tunefleet.model import MLP
from tunefleet.stack import build_stack, train_step
from tunefleet.train import train_one
from tunefleet.train_config import TrainConfig

WEIGHT_ATOL, METRIC_ATOL = 2e-4, 1e-4


def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"torch_threads": 1, "calibrate": True, **kw})


def _assert_same(cohort_result, reference) -> None:
    assert cohort_result.best_epoch == reference.best_epoch
    assert cohort_result.metrics["epochs_run"] == reference.metrics["epochs_run"]
    for key, value in reference.metrics.items():
        assert cohort_result.metrics[key] == pytest.approx(value, abs=METRIC_ATOL), key
    for key, weights in reference.bundle.state_dict.items():
        np.testing.assert_allclose(cohort_result.bundle.state_dict[key], weights, atol=WEIGHT_ATOL, err_msg=key)
    assert len(cohort_result.history) == len(reference.history)


BREAST_CANCER = [
    # widths within a layer count differ (padding), and so do lr, weight decay, momentum, epochs, seed, patience
    [_cfg(hidden_widths=(), optimizer="adam", lr=0.01, epochs=6, seed=1), _cfg(hidden_widths=(), optimizer="adam", lr=0.003, weight_decay=1e-3, epochs=9, seed=2)],
    [_cfg(hidden_widths=(16,), optimizer="sgd", lr=0.05, momentum=0.9, epochs=7, seed=3), _cfg(hidden_widths=(32,), optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=1e-4, epochs=5, seed=4)],
    [_cfg(hidden_widths=(32, 8), optimizer="adam", lr=0.002, epochs=8, seed=5), _cfg(hidden_widths=(16, 16), optimizer="adam", lr=0.01, epochs=8, seed=6, patience=2)],
]  # fmt: skip


@pytest.mark.parametrize("members", BREAST_CANCER, ids=["logreg-adam", "1layer-sgd", "2layer-adam"])
def test_each_member_equals_train_one_on_breast_cancer(breast_cancer_data, members) -> None:
    results = train_cohort(members, breast_cancer_data)
    for cfg, result in zip(members, results, strict=True):
        _assert_same(result, train_one(cfg, breast_cancer_data))


@pytest.mark.parametrize("name", ["sign", "threshold_1d"])
def test_each_member_equals_train_one_on_toy_sets(name: str) -> None:
    conf = dataset_conf(name)
    data = conf.load()
    seed = conf.seed_train_config(torch_threads=1)
    members = [seed, seed.model_copy(update={"lr": seed.lr / 2, "seed": 3, "epochs": max(2, seed.epochs // 2)})]
    for cfg, result in zip(members, train_cohort(members, data), strict=True):
        _assert_same(result, train_one(cfg, data))


def test_each_member_equals_train_one_on_mnist(mnist_root) -> None:
    conf = dataset_conf("mnist")
    conf = conf.model_copy(
        update={"dataset": conf.dataset.model_copy(update={"options": {"root": str(mnist_root), "download": False}})}
    )
    data = conf.load()
    members = [_cfg(hidden_widths=(), lr=1e-3, epochs=2, batch_size=128, seed=s) for s in (0, 1)]
    members.append(_cfg(hidden_widths=(), lr=3e-3, epochs=2, batch_size=128, seed=2, weight_decay=1e-4))
    for cfg, result in zip(members, train_cohort(members, data), strict=True):
        _assert_same(result, train_one(cfg, data))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_batch_sizes_16_to_128_in_one_cohort(breast_cancer_data, optimizer: str) -> None:
    """Members with different batch sizes share one stack (sorted by it) and each still equals train_one."""
    members = [
        _cfg(hidden_widths=(16,), optimizer=optimizer, batch_size=64, lr=0.01, momentum=0.9, epochs=4, seed=1),
        _cfg(hidden_widths=(32,), optimizer=optimizer, batch_size=16, lr=0.003, momentum=0.5, epochs=5, seed=2),
        _cfg(hidden_widths=(8,), optimizer=optimizer, batch_size=128, lr=0.02, weight_decay=1e-3, epochs=3, seed=3),
        _cfg(hidden_widths=(16,), optimizer=optimizer, batch_size=32, lr=0.005, weight_decay=1e-4, epochs=5, seed=4),
    ]
    assert cohort_groups(members) == [[0, 1, 2, 3]]
    for cfg, result in zip(members, train_cohort(members, breast_cancer_data), strict=True):
        _assert_same(result, train_one(cfg, breast_cancer_data))


MIXED = [  # both optimizers, batch sizes 16 to 128, widths padded to 64, patience
    _cfg(hidden_widths=(16, 8), optimizer="adam", lr=0.01, weight_decay=1e-3, batch_size=32, epochs=5, seed=1),
    _cfg(hidden_widths=(8, 16), optimizer="sgd", lr=0.05, momentum=0.9, batch_size=16, epochs=6, seed=2),
    _cfg(hidden_widths=(32, 4), optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=1e-4, batch_size=64, epochs=4, seed=3),
    _cfg(hidden_widths=(64, 64), optimizer="adam", lr=0.003, batch_size=128, epochs=7, seed=4, patience=2),
]  # fmt: skip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_each_member_equals_train_one_on_cuda(breast_cancer_data) -> None:
    """The whole cohort path on a GPU, results included (CPU-only CI cannot run it; see README, GPU tier)."""
    for group in [*BREAST_CANCER, MIXED]:
        members = [m.model_copy(update={"device": "cuda"}) for m in group]
        for cfg, result in zip(members, train_cohort(members, breast_cancer_data), strict=True):
            reference = train_one(cfg, breast_cancer_data)
            assert result.device.startswith("cuda") and reference.device.startswith("cuda")
            _assert_same(result, reference)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_padded_units_stay_exactly_zero(breast_cancer_data, optimizer: str) -> None:
    """A narrow member next to a wide one: its padded rows/columns are 0.0 after every step."""
    members = [_cfg(hidden_widths=(4,), optimizer=optimizer, lr=0.05, weight_decay=1e-2, momentum=0.9, epochs=1),
               _cfg(hidden_widths=(16,), optimizer=optimizer, lr=0.05, weight_decay=1e-2, momentum=0.9, epochs=1, seed=1)]  # fmt: skip
    stack = stack_members(members, _member_networks(members, breast_cancer_data), torch.device("cpu"))
    X = torch.from_numpy(breast_cancer_data.X_train[:64]).expand(2, -1, -1)
    y = torch.from_numpy(breast_cancer_data.y_train[:64]).expand(2, -1)
    weights = torch.full((2, 64), 1 / 64)
    for _ in range(5):
        train_step(stack, X, y, weights)
        assert torch.count_nonzero(stack.weights[0][0, :, 4:]) == 0  # narrow member's padded hidden units
        assert torch.count_nonzero(stack.biases[0][0, :, 4:]) == 0
        assert torch.count_nonzero(stack.weights[1][0, 4:, :]) == 0
        assert torch.count_nonzero(stack.weights[0][1]) > 0  # the wide member trains


def test_adam_and_sgd_members_share_a_stack(breast_cancer_data) -> None:
    """One update serves both optimizers: mixed members in one cohort each equal train_one."""
    members = [
        _cfg(hidden_widths=(16, 8), optimizer="adam", lr=0.01, weight_decay=1e-3, batch_size=32, epochs=5, seed=1),
        _cfg(hidden_widths=(8, 16), optimizer="sgd", lr=0.05, momentum=0.9, batch_size=16, epochs=6, seed=2),
        _cfg(hidden_widths=(32, 4), optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=1e-4, batch_size=64, epochs=4, seed=3),
    ]  # fmt: skip
    assert cohort_groups(members) == [[0, 1, 2]]
    for cfg, result in zip(members, train_cohort(members, breast_cancer_data), strict=True):
        _assert_same(result, train_one(cfg, breast_cancer_data))


@pytest.mark.parametrize("update", [updates.PerMemberUpdate, updates.BatchedUpdate], ids=["per-member", "batched"])
@pytest.mark.parametrize("adam", [[True, True, True], [False, False, False], [True, False, False]])
def test_update_equals_torch_optimizers(adam: list[bool], update: type) -> None:
    """Three members in one stack, the later rows skipping some steps (larger batches), == torch.optim per member.

    Both updates run here on the CPU: the per-member one is the CPU's, the batched one a GPU's.
    """
    torch.manual_seed(0)
    nets = [MLP(3, (), 4) for _ in range(3)]  # one layer: a (3, 4) weight and a bias
    grads = [[torch.randn(3, 3, 4), torch.randn(3, 1, 4)] for _ in range(6)]
    prefix = [3, 2, 3, 1, 3, 2]  # members training at each step: always the first rows
    lr, wd, mom = [0.1, 0.01, 0.03], [1e-3, 1e-2, 0.0], [0.0, 0.5, 0.9]
    hyper = [updates.Hyper(*h) for h in zip(lr, wd, mom, adam, strict=True)]
    stack = build_stack(nets, hyper, [16, 32, 64], torch.device("cpu"))
    stack.update = update(updates.OptState(stack.theta, stack.grad, stack.m, stack.v, stack.steps, stack.hyper))
    for step_grads, a in zip(grads, prefix, strict=True):
        stack.grad[:a] = torch.cat([g[:a].reshape(a, -1) for g in step_grads], dim=1)
        stack.update(a)
    for k, net in enumerate(nets):
        lin = net.net[0]
        qs = [lin.weight.detach().T.clone().requires_grad_(), lin.bias.detach().view(1, -1).clone().requires_grad_()]
        opt = (torch.optim.Adam(qs, lr=lr[k], weight_decay=wd[k]) if adam[k]
               else torch.optim.SGD(qs, lr=lr[k], momentum=mom[k], weight_decay=wd[k]))  # fmt: skip
        for step_grads, a in zip(grads, prefix, strict=True):
            if k < a:
                for q, g in zip(qs, step_grads, strict=True):
                    q.grad = g[k].clone()
                opt.step()
        torch.testing.assert_close(stack.weights[0][k], qs[0].detach(), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(stack.biases[0][k], qs[1].detach(), atol=1e-6, rtol=1e-5)


def test_batched_update_trains_a_cohort_equal_to_train_one(breast_cancer_data, monkeypatch) -> None:
    """The GPU's update, forced on the CPU through a whole cohort (mixed optimizers, batch sizes, widths)."""
    monkeypatch.setattr(updates, "make_update", updates.BatchedUpdate)
    for cfg, result in zip(MIXED, train_cohort(MIXED, breast_cancer_data), strict=True):
        _assert_same(result, train_one(cfg, breast_cancer_data))


def test_members_that_are_done_leave_the_stack(breast_cancer_data) -> None:
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def report(member: int, epoch: int, row: dict) -> bool:
        seen[member].append(epoch)
        return member == 2 and epoch == 2  # a pruned member: stopped at its rung

    members = [
        _cfg(hidden_widths=(8,), epochs=3),
        _cfg(hidden_widths=(8,), epochs=6, seed=1),
        _cfg(hidden_widths=(8,), epochs=6, seed=2),
    ]
    results = train_cohort(members, breast_cancer_data, report=report)
    assert seen == {0: [1, 2, 3], 1: [1, 2, 3, 4, 5, 6], 2: [1, 2]}
    assert [r.metrics["epochs_run"] for r in results] == [3, 6, 2]
