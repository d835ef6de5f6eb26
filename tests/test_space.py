import math

import numpy as np
import pytest

from hpo.space import Choice, Fidelity, Float, Int, Space, SpaceError


def test_round_trips_are_exact_for_every_parameter_kind():
    space = Space(
        {
            "lr": Float(1e-5, 1e-1, log=True),
            "x": Float(-3.0, 7.5),
            "n": Int(1, 1000, log=True),
            "k": Int(0, 90, step=10),
            "act": Choice(["relu", "tanh", None, True, 3]),
        }
    )
    rng = np.random.default_rng(0)
    for u in rng.random((500, space.dim)):
        config = space.decode(u)
        assert space.decode(space.encode(config)) == config
    for v in range(1, 1001):
        assert space.decode(space.encode({"lr": 1e-3, "x": 0.0, "n": v, "k": 0, "act": "relu"}))["n"] == v
    for value in ["relu", "tanh", None, True, 3]:
        config = {"lr": 1e-3, "x": 0.0, "n": 1, "k": 0, "act": value}
        decoded = space.decode(space.encode(config))["act"]
        assert decoded == value and type(decoded) is type(value)


def test_bool_choice_is_not_confused_with_one():
    p = Choice([1, True])
    assert p.index(True) == 1 and p.index(1) == 0


def test_decode_of_any_cube_point_is_inside_the_space():
    space = Space({"lr": Float(1e-5, 1e-1, log=True), "k": Int(2, 30, step=4), "c": Choice(["a", "b"])})
    for u in [np.zeros(3), np.ones(3), np.full(3, 0.5), np.array([-1.0, 2.0, 1.0])]:
        space.validate(space.decode(u))


def test_linear_ints_get_equal_shares_of_the_cube():
    p = Int(0, 4)
    counts = np.bincount([p.decode(u) for u in np.linspace(0, 1, 10_001)[:-1] + 0.5e-4], minlength=5)
    assert counts.min() == counts.max() == 2000


@pytest.mark.parametrize(
    ("param", "message"),
    [
        (Float(1.0, 1.0), "low=1.0 must be below high=1.0"),
        (Float(0.0, 1.0, log=True), "log scale needs low > 0"),
        (Int(5, 1), "low=5 must be below high=1"),
        (Int(0, 10, step=3), "step=3 does not divide high - low = 10; set high to 9"),
        (Int(0, 10, log=True), "log scale needs low >= 1"),
        (Choice([]), "choices is empty"),
        (Choice(["a", "a"]), "repeat a value"),
        (Choice([(0.9, 0.95), (0.9, 0.999)]), "choice (0.9, 0.95) is a tuple; choices must be strings, numbers"),
    ],
)
def test_bad_spaces_fail_at_construction_naming_the_parameter_and_the_fix(param, message):
    with pytest.raises(SpaceError) as e:
        Space({"p": param})
    assert "'p'" in str(e.value) and message in str(e.value)


def test_config_outside_the_space_names_the_parameter():
    space = Space({"lr": Float(1e-4, 1e-1, log=True), "n": Int(1, 8)})
    with pytest.raises(SpaceError, match=r"lr=0.5 is outside the space; it must be a float in \[0.0001, 0.1\]"):
        space.validate({"lr": 0.5, "n": 2})
    with pytest.raises(SpaceError, match="no value for parameter 'n'"):
        space.validate({"lr": 0.01})
    with pytest.raises(SpaceError, match="n=2.5 is outside"):
        space.validate({"lr": 0.01, "n": 2.5})
    with pytest.raises(SpaceError, match="lr=nan is outside"):
        space.validate({"lr": math.nan, "n": 2})


def test_from_dict_reads_sweep_file_spaces():
    space = Space.from_dict(
        {
            "params": {
                "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                "hidden": {"type": "int", "low": 16, "high": 256, "log": True},
                "act": ["relu", "tanh"],
                "batch_size": 64,
            },
            "fidelity": {"name": "epoch", "low": 1, "high": 27},
        }
    )
    assert space.names == ["lr", "hidden", "act"]
    assert space.constants == {"batch_size": 64}
    assert space.max_step == 27
    config = space.decode([0.5, 0.5, 0.9])
    assert config["batch_size"] == 64 and config["epoch"] == 27 and config["act"] == "tanh"
    assert Space.from_dict(space.to_dict()) == space


def test_from_dict_rejects_unknown_types_and_keys():
    with pytest.raises(SpaceError, match="parameter 'lr': unknown type 'real'"):
        Space.from_dict({"lr": {"type": "real", "low": 0, "high": 1}})
    with pytest.raises(SpaceError, match=r"unknown keys \['lo'\]"):
        Space.from_dict({"lr": {"type": "float", "lo": 0, "high": 1}})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"n": {"type": "int", "low": 1, "high": 9.7}}, "parameter 'n': high must be an integer, got 9.7"),
        ({"n": {"type": "int", "low": "one", "high": 9}}, "parameter 'n': low must be an integer, got 'one'"),
        ({"lr": {"type": "float", "low": 1e-4, "high": 1, "log": "false"}}, "log must be true or false"),
        (
            {"params": {"x": {"type": "float", "low": 0, "high": 1}}, "fidelty": {"name": "epoch", "high": 9}},
            r"unknown keys \['fidelty'\] beside params",
        ),
        (
            {
                "params": {"x": {"type": "float", "low": 0, "high": 1}},
                "fidelity": {"name": "epoch", "min": 3, "high": 9},
            },
            "fidelity must be {name: ..., low: ..., high: ...}",
        ),
        (
            {"params": {"x": {"type": "float", "low": 0, "high": 1}}, "fidelity": {"name": "epoch", "high": 9.5}},
            "fidelity: high must be an integer, got 9.5",
        ),
    ],
)
def test_from_dict_refuses_what_it_would_otherwise_coerce_or_drop(spec, message):
    # int(9.7) == 9, bool("false") is True, a misspelled key is ignored: each would run another sweep than written
    with pytest.raises(SpaceError, match=message):
        Space.from_dict(spec)
    assert Space.from_dict({"n": {"type": "int", "low": 1.0, "high": 9.0}}).params["n"] == Int(1, 9)


def test_fidelity_must_be_a_positive_integer_range():
    with pytest.raises(SpaceError, match="fidelity 'epoch': low must be an integer >= 1"):
        Space({"x": Float(0, 1)}, fidelity=Fidelity("epoch", 0, 10))


def test_sobol_is_deterministic_and_skips_exactly():
    space = Space({"a": Float(0, 1), "b": Float(0, 1)})
    assert np.array_equal(space.sobol(8, seed=3), space.sobol(8, seed=3))
    assert np.allclose(space.sobol(8, seed=3)[4:], space.sobol(4, seed=3, skip=4))
    assert not np.allclose(space.sobol(8, seed=3), space.sobol(8, seed=4))
