"""Every RunConfig field, set to a valid non-default value through each way text becomes a config:
the CLI flags, the URL parameters the app reads, and a JSON config file (typed values and strings).

The cases are generated from the schema, so a field added to ``config.py`` is tested here at once.
"""

import json

import pytest

from fgff_core.cli import build_parser, config_from_args
from fgff_core.config import RunConfig, config_fields, field_choices
from fgff_core.config.form import config_from_params

DEFAULTS = RunConfig()


def _non_default(f) -> object:
    """A valid value of field ``f`` that differs from the default config's, from its metadata only."""
    meta, default = f.metadata, getattr(DEFAULTS, f.name)
    kind = meta["kind"]
    if kind == "choice":
        others = [c for c in field_choices(f.name) if c != default]
        return others[0] if others else default  # a one-choice field (optimizer) has no other value
    if kind == "bool":
        return not default
    if kind == "int_list":
        return (7, 3)
    if kind == "path":
        return "/tmp/fgff-roundtrip-data"
    lo, hi = meta["min"], meta["max"]
    if kind == "int":
        return default + 1 if default + 1 <= hi else lo
    value = 0.1 if default != 0.1 else 0.2  # a float that needs parsing, not an int in disguise
    assert lo < value <= hi or (lo == value and not meta.get("min_open"))
    return value


def _companions(f, value) -> dict:
    """Other fields' values that ``value`` needs (the field's ``requires`` metadata)."""
    needs = f.metadata.get("requires", {}).get(value, {})
    return {other: (allowed() if callable(allowed) else allowed)[0] for other, allowed in needs.items()}


FIELDS = [(f.name, _non_default(f)) for f in config_fields()]
COMPANIONS = {f.name: _companions(f, value) for f, (_, value) in zip(config_fields(), FIELDS)}
ALL = {**dict(FIELDS), **{k: v for c in COMPANIONS.values() for k, v in c.items()}}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _flags(name: str, value: object) -> list[str]:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    return [flag, _text(value)]


def test_the_generated_values_differ_from_the_defaults_and_are_valid():
    assert len(FIELDS) == len(config_fields())
    for name, value in FIELDS:
        assert value != getattr(DEFAULTS, name) or len(field_choices(name) or ()) == 1, name
        assert getattr(RunConfig(**{name: value}, **COMPANIONS[name]), name) == value, name


@pytest.mark.parametrize("name, value", FIELDS)
def test_each_field_through_the_cli(name, value):
    companions = [tok for other, v in COMPANIONS[name].items() for tok in _flags(other, v)]
    args = build_parser().parse_args(["train", *_flags(name, value), *companions])
    assert getattr(config_from_args(args), name) == value


@pytest.mark.parametrize("name, value", FIELDS)
def test_each_field_through_url_parameters(name, value):
    params = {name: _text(value), "run": "ignored", **{k: _text(v) for k, v in COMPANIONS[name].items()}}
    assert getattr(config_from_params(params), name) == value


@pytest.mark.parametrize("as_text", [False, True], ids=["typed", "strings"])
@pytest.mark.parametrize("name, value", FIELDS)
def test_each_field_through_a_json_config_file(tmp_path, name, value, as_text):
    plain = list(value) if isinstance(value, tuple) else value
    path = tmp_path / "config.json"
    path.write_text(json.dumps({name: _text(value) if as_text else plain, **COMPANIONS[name]}))
    args = build_parser().parse_args(["train", "--config", str(path)])
    assert getattr(config_from_args(args), name) == value


def test_all_fields_at_once_agree_across_the_three_routes(tmp_path):
    expected = RunConfig(**ALL)
    argv = ["train"] + [tok for name, value in ALL.items() for tok in _flags(name, value)]
    assert config_from_args(build_parser().parse_args(argv)) == expected
    assert config_from_params({name: _text(value) for name, value in ALL.items()}) == expected
    path = tmp_path / "c.json"
    path.write_text(json.dumps({name: _text(value) for name, value in ALL.items()}))
    assert config_from_args(build_parser().parse_args(["train", "--config", str(path)])) == expected


HOSTILE = ["nan", "-nan", "inf", "-inf", "1e309", "-1", "0", "1" * 5000, "", "   ", "٣", "５", "１,２", "0x10",
           "1_000", "None", "null", "true", "[]", "{}", "a\x00b", "\u202e", "é" * 10_000, "1,,2", ",", "max",
           "full", "cuda:", "cuda:-1", " cpu ", 3.5, -0.0, float("nan"), float("inf"), 10**30, True, None, [],
           {}, [1, "2"], b"1"]


@pytest.mark.parametrize("name", [f.name for f in config_fields()])
def test_hostile_values_are_accepted_as_valid_or_refused_with_the_field_name(name):
    for value in HOSTILE:
        try:
            cfg = RunConfig(**{name: value})
        except ValueError as exc:
            assert str(exc).startswith(f"{name}: "), (value, exc)
            assert len(str(exc)) < 400  # a hostile megabyte is not echoed back
        else:
            RunConfig.from_json(cfg.to_json())  # whatever was accepted is a valid, storable config
