"""MPO-LSTM's parameter count (Sun et al., IEEE/ACM TASLP 2020): the paper's formula
P(d) = Σ_k i_k j_k d_{k−1} d_k + 3·i_1 j_1 d_0 d_1 against MPOLSTM's cores and num_params,
and the published point h = 256, (8,2,2,8) × (8,2,2,8), d = 7: 2,632 per MPO, 5,264 for W and
U, 99.6× fewer than the 524,288 dense gate weights."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tnkit.torch import MPOLSTM  # noqa: E402

DIMS = (8, 2, 2, 8)


def paper_count(out_dims, in_dims, bond):
    """P(d) with every inner bond ``d`` (capped at the full rank of its cut), d_0 = d_N = 1:
    the gates' factor 4 is not in ``out_dims`` here, it is the ``3·i_1·j_1·d_0·d_1`` term."""
    n = len(out_dims)
    bonds = [1]
    for k in range(1, n):
        left = right = 1
        for i, j in zip(out_dims[:k], in_dims[:k], strict=True):
            left *= i * j
        for i, j in zip(out_dims[k:], in_dims[k:], strict=True):
            right *= i * j
        bonds.append(min(bond, 4 * left, right))
    bonds.append(1)
    total = sum(out_dims[k] * in_dims[k] * bonds[k] * bonds[k + 1] for k in range(n))
    return total + 3 * out_dims[0] * in_dims[0] * bonds[0] * bonds[1]


def test_published_point_h256_d7():
    per_mpo = paper_count(DIMS, DIMS, 7)
    assert per_mpo == 8 * 8 * 7 + 2 * 2 * 49 + 2 * 2 * 49 + 8 * 8 * 7 + 3 * 8 * 8 * 7 == 2632
    lstm = MPOLSTM(256, 256, input_dims=DIMS, hidden_dims=DIMS, max_bond=7, device="meta")
    weights = lstm.mpo_weights()
    assert sorted(weights) == ["weight_hh_l0", "weight_ih_l0"]
    for weight in weights.values():
        assert weight.out_dims == (32, 2, 2, 8) and weight.in_dims == DIMS
        assert weight.bond_dims == (7, 7, 7)
        assert sum(c.numel() for c in weight.cores) == 2632
    assert lstm.num_params == 2 * per_mpo == 5264
    dense = 2 * 4 * 256 * 256
    assert dense == 524_288
    assert round(dense / lstm.num_params, 1) == 99.6
    biases = sum(p.numel() for name, p in lstm.named_parameters() if "bias" in name)
    assert sum(p.numel() for p in lstm.parameters()) == lstm.num_params + biases


@pytest.mark.parametrize("bond", [1, 2, 4, 7, 16, 64])
@pytest.mark.parametrize(
    ("input_size", "hidden_size", "input_dims", "hidden_dims"),
    [
        (256, 256, DIMS, DIMS),
        (64, 256, (4, 2, 2, 4), DIMS),
        (8, 64, (2, 2, 2), (4, 4, 4)),
        (12, 6, (3, 4), (2, 3)),
    ],
)
def test_num_params_equals_formula(input_size, hidden_size, input_dims, hidden_dims, bond):
    lstm = MPOLSTM(
        input_size,
        hidden_size,
        input_dims=input_dims,
        hidden_dims=hidden_dims,
        max_bond=bond,
        device="meta",
    )
    want = paper_count(hidden_dims, input_dims, bond) + paper_count(hidden_dims, hidden_dims, bond)
    assert lstm.num_params == want


def test_num_params_counts_every_layer_and_direction():
    lstm = MPOLSTM(256, 256, 2, bidirectional=True, input_dims=DIMS, hidden_dims=DIMS, max_bond=7)
    above = paper_count(DIMS, (16, 2, 2, 8), 7)  # layer 2 reads both directions: 512 inputs
    assert lstm.num_params == 2 * (paper_count(DIMS, DIMS, 7) * 2 + above + 2632)
    out, _ = lstm(torch.randn(3, 2, 256))
    assert out.shape == (3, 2, 512)


def test_gate_blocks_sit_in_the_first_output_mode():
    """Gate g (i, f, g, o) owns rows g·h .. (g+1)·h: first output index g·i_1 + i_1'."""
    torch.manual_seed(0)
    lstm = MPOLSTM(4, 8, input_dims=(2, 2), hidden_dims=(2, 4), max_bond=2)
    W = lstm.weight_ih_l0.matrix.detach()
    first = lstm.weight_ih_l0.cores[0].detach()  # (1, 4·2, 2, D)
    rest = lstm.weight_ih_l0.cores[1].detach()  # (D, 4, 2, 1)
    dense = torch.einsum("aijb,bklc->ikjl", first, rest).reshape(32, 4)
    torch.testing.assert_close(W, dense)
    assert first.shape[1] == 4 * 2
    for gate in range(4):
        kept = first.clone()
        kept[:, 2 * gate : 2 * gate + 2] = 0
        without = torch.einsum("aijb,bklc->ikjl", kept, rest).reshape(32, 4)
        rows = slice(8 * gate, 8 * gate + 8)
        assert bool((without[rows] == 0).all())
        others = torch.ones(32, dtype=torch.bool)
        others[rows] = False
        torch.testing.assert_close(without[others], W[others])
