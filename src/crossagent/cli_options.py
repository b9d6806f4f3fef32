"""Config dataclasses as command-line options of an argparse (sub-)command: one flag per field.

    add_options(parser, GRPOConfig, skip=("model",), rename={"output_dir": "--out"})
    config = config_from_args(parser.parse_args(), GRPOConfig, model="runs/sft/final")

A field `kl_coef: float = 0.01  # 0 skips the reference model` becomes `--kl-coef KL_COEF` with the
help "0 skips the reference model (default: 0.01)". The help is the field's trailing comment in the
source, so a config is documented once, where its fields are declared, as the project's configs
already are (field(metadata={"help": ...}), TRL's way, would restate every field). Types: bool gets
--x / --no-x; `X | None` takes an X (default None); Path, int, float, str convert; Literal gives
choices; a field without a default is a required option.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
import types
import typing
from typing import Any, Literal


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_options(parser: argparse.ArgumentParser, config_class: type, skip: tuple[str, ...] = (),
                rename: dict[str, str] | None = None) -> None:
    """One option per init field of `config_class` but `skip`; `rename` maps a field to its flag ("--out").
    The parsed value lands under the field's name, whatever the flag."""
    rename = rename or {}
    hints = typing.get_type_hints(config_class)
    comments = field_comments(config_class)
    for field in dataclasses.fields(config_class):
        if not field.init or field.name in skip:
            continue
        kind = hints[field.name]
        options: dict[str, Any] = {"dest": field.name}
        if field.default is not dataclasses.MISSING:
            options["default"] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            options["default"] = field.default_factory()
        else:
            options["required"] = True
        arguments = typing.get_args(kind)
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None: an X
            kind = next(argument for argument in arguments if argument is not type(None))
            arguments = typing.get_args(kind)
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is Literal:
            options.update(type=type(arguments[0]), choices=arguments)
        else:
            options["type"] = kind
        help_text = comments.get(field.name, "").replace("%", "%%")  # argparse formats help with %
        action = parser.add_argument(rename.get(field.name, flag(field.name)), help=help_text, **options)
        if "default" in options and "%(default)" not in action.help:  # BooleanOptionalAction may add it itself
            action.help += " (default: %(default)s)"
        action.help = action.help.strip()


def config_from_args(args: argparse.Namespace, config_class: type, **overrides: Any):
    """The config from the parsed options; `overrides` set fields (skipped ones, usually) directly."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(config_class)
              if field.init and field.name not in overrides and hasattr(args, field.name)}
    return config_class(**values, **overrides)


def field_comments(config_class: type) -> dict[str, str]:
    """Each field's trailing `# comment` in the source of the class (and of its dataclass bases); for a field without
    one, the comment lines just above it."""
    comments: dict[str, str] = {}
    for cls in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(cls):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):  # no source (frozen or interactive): options without help text
            continue
        by_line = {token.start[0]: token.string.lstrip("#").strip()
                   for token in tokenize.generate_tokens(io.StringIO(source).readline)
                   if token.type == tokenize.COMMENT}
        source_lines = source.splitlines()
        for statement in ast.parse(source).body[0].body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                lines = range(statement.lineno, statement.end_lineno + 1)
                text = " ".join(by_line[line] for line in lines if line in by_line)
                above = statement.lineno - 1
                while not text and above in by_line and source_lines[above - 1].lstrip().startswith("#"):
                    above -= 1
                text = text or " ".join(by_line[line] for line in range(above + 1, statement.lineno))
                if text:
                    comments[statement.target.id] = text
    return comments
