"""simulations.cauchy_overtake against theory's exact overtaking probability, bounds and Cauchy tail."""

import dataclasses

import numpy as np
import pytest

import theory
from simulations import cauchy_overtake as co

# |mc - exact| <= K_SE * se: at K_SE = 4 a correct row fails with probability 6e-5 (two-sided normal); the
# seeds are fixed, so a failure is reproducible, not flaky.
K_SE = 4.0
SMALL = co.Config(draws=20_000, ks=(1.0, 3.0), n_small=(1, 5), n_large=(1, 3), ratio_gammas=(0.5, 2.0))


@pytest.fixture(scope="module")
def table():
    return co.run(SMALL, rng=1)


def test_overtake_frequency_against_exact_probability(table):
    rows = table[table["quantity"].isin(["overtake-sum", "overtake-average", "ratio-tail"])]
    assert len(rows) == 2 * 2 * 2 * 2 + 2 * 2
    assert (np.abs(rows["estimate"] - rows["theory"]) <= K_SE * rows["se"]).all()
    assert rows["agree"].all()


def test_gamma_2_bound_holds_and_is_attained_when_eq_21_is_tight(table):
    bound = table[table["quantity"] == "overtake-sum-bound"]
    assert (bound["estimate"] <= bound["theory"] + K_SE * bound["se"]).all()
    # |X_S| = |X_L| = 1 with x_l = K x_s: the bound is the exact probability.
    single = table[(table["quantity"] == "overtake-sum") & (table["n_small"] == 1) & (table["n_large"] == 1)
                   & (table["source"] == "synthetic")]
    assert np.allclose(single["theory"], theory.overtake_bound(single["K"], 1, 1))


def test_verdict_fails_against_a_wrong_closed_form(monkeypatch):
    # gamma_1 squared instead of gamma_1: a closed form that is wrong wherever gamma_1 != 1.
    monkeypatch.setattr(theory, "overtake_probability",
                        lambda xs, xl, average=False: theory.cauchy_tail(
                            1.0, theory.overtake_gamma(xs, xl, average=average) ** 2))
    table = co.run(dataclasses.replace(SMALL, ratio_gammas=(1.0,)), rng=1)
    rows = table[(table["quantity"] == "overtake-sum") & (np.abs(table["gamma"] - 1) > 0.2)]
    assert not rows["agree"].any()


def test_same_seed_same_table_different_seed_agrees(table):
    again = co.run(SMALL, rng=1)
    assert again.to_csv(index=False) == table.to_csv(index=False)
    other = co.run(SMALL, rng=2)
    assert not np.array_equal(other["estimate"], table["estimate"])
    # The synthetic sets are drawn from the seed too, so compare residuals from each seed's exact value.
    both = np.hypot(table["se"], other["se"])
    exact = table["relation"] == "equal"
    residual_gap = (other["estimate"] - other["theory"]) - (table["estimate"] - table["theory"])
    assert (np.abs(residual_gap[exact]) <= K_SE * both[exact]).all()


def sparse_activations(rng, n=600):
    values = np.maximum(rng.standard_normal(n), 0) * rng.exponential(1.0, n)  # half zeros, ReLU-like
    return values


def test_activation_sets_against_exact_probability():
    values = sparse_activations(np.random.default_rng(0))
    table = co.overtake_on_activations(values, rng=3, draws=20_000, q_high=(0.9,), q_low=(0.5, 0.3))
    exact = table[table["quantity"] == "overtake-sum"]
    assert len(exact) == 2
    assert (np.abs(exact["estimate"] - exact["theory"]) <= K_SE * exact["se"]).all()
    large, small, _, _ = co.quantile_sets(values, 0.9, 0.5)
    assert not np.any(large & small)
    assert exact["theory"].iloc[0] == pytest.approx(theory.overtake_probability(values[small], values[large]))


def test_negative_activations_follow_section_i_inverse_ratio():
    # Swish-like layers: every statistic negative, the bottom set holds the large magnitudes.
    values = -np.abs(np.random.default_rng(4).standard_normal(800))
    table = co.overtake_on_activations(values, rng=5, draws=10_000, q_high=(0.9,), q_low=(0.3,))
    rows = table.set_index("quantity")
    assert abs(rows.loc["overtake-sum", "estimate"] - rows.loc["overtake-sum", "theory"]) \
        <= K_SE * rows.loc["overtake-sum", "se"]
    # Section I's estimate concerns the top set overtaking the bottom one: its frequency is eq. 27-28's exact
    # probability with the roles swapped (the top set, small in magnitude, is the overtaking one)
    large, small, _, _ = co.quantile_sets(values, 0.9, 0.3)
    swapped = theory.overtake_probability(values[large], values[small])
    section_i = rows.loc["overtake-section-I"]
    assert abs(section_i["estimate"] - swapped) <= K_SE * section_i["se"]
    assert abs(section_i["estimate"] - rows.loc["overtake-sum", "theory"]) > K_SE * section_i["se"]


def test_overtake_counts_condition_on_half_the_draws(table):
    # P(sum w_l x_l > 0) = 1/2 by symmetry: the conditioning count n, read back from se = sqrt(p(1-p)/n),
    # is Binomial(draws, 1/2), within K_SE of its sd sqrt(draws)/2; the default grid draws >= 10^7 neurons
    rows = table[(table["quantity"] == "overtake-sum") & (table["estimate"] > 0)]
    n = rows["estimate"] * (1 - rows["estimate"]) / rows["se"] ** 2
    assert len(rows) == 8
    assert (np.abs(n - SMALL.draws / 2) <= K_SE * np.sqrt(SMALL.draws) / 2).all()
    default = co.Config()
    assert default.neuron_draws * len(default.ks) * len(default.n_small) * len(default.n_large) >= 10**7


def test_loads_csv_npy_and_empirical_npz(tmp_path):
    values = sparse_activations(np.random.default_rng(1), 50)
    np.savetxt(tmp_path / "a.csv", values, delimiter=",", header="value", comments="")
    np.save(tmp_path / "a.npy", values)
    np.savez(tmp_path / "activation_samples.npz", **{"demo/0": values, "demo/1": values + 1})
    assert np.allclose(co.load_activations(tmp_path / "a.csv"), values)
    assert np.allclose(co.load_activations(tmp_path / "a.npy"), values)
    assert np.allclose(co.load_activations(tmp_path / "activation_samples.npz", "demo/1"), values + 1)
    with pytest.raises(ValueError, match="choose one of: demo/0, demo/1"):
        co.load_activations(tmp_path / "activation_samples.npz")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--draws", "-5"], "argument --draws: must be a positive integer, got '-5'"),
        (["--K", "0"], "K must hold positive finite numbers"),
        (["--K", "-1", "2"], "K must hold positive finite numbers"),
        (["--n-small", "0"], "argument --n-small: must be a positive integer, got '0'"),
    ],
)
def test_bad_configuration_exits_2_with_one_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        co.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(("content", "message"), [("", "is empty"), ("1.0\nnan\n2.0\n", "NaN")])
def test_bad_activation_file_exits_2(tmp_path, capsys, content, message):
    path = tmp_path / "acts.csv"
    path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        co.main(["--activations", str(path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_and_empty_npy_exit_2(tmp_path, capsys):
    np.save(tmp_path / "empty.npy", np.array([]))
    for path, message in [(tmp_path / "none.npy", "does not exist"), (tmp_path / "empty.npy", "is empty")]:
        with pytest.raises(SystemExit) as exit_info:
            co.main(["--activations", str(path)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_cli_writes_identical_csv_for_the_same_seed(tmp_path, capsys):
    argv = ["--draws", "2000", "--K", "2", "--n-small", "3", "--n-large", "1", "--seed", "7"]
    assert co.main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert co.main([*argv, "--out", str(tmp_path / "b"), "--plot"]) == 0
    first = (tmp_path / "a" / "cauchy_overtake.csv").read_bytes()
    assert first == (tmp_path / "b" / "cauchy_overtake.csv").read_bytes()
    assert (tmp_path / "b" / "cauchy_overtake.png").stat().st_size > 10_000
    assert '"seed": 7' in (tmp_path / "a" / "cauchy_overtake.json").read_text()
    assert "overtake-sum" in capsys.readouterr().out
