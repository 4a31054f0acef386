"""Split ``make run ARGS='…'`` into arguments without mangling JSON.

A Makefile recipe hands ``$(ARGS)`` to the shell, which strips the quotes out
of ``--input {"target_digit":3}`` and brace-expands ``{"a":1,"b":2}``. The
Makefile exports ``ARGS`` instead, and this splits it: whitespace separates
arguments, except inside a JSON object or array (``{…}``, ``[…]``) or a
quoted string; quotes around a whole non-JSON argument are removed.
"""

from __future__ import annotations


class ArgsSyntaxError(ValueError):
    """ARGS has an unclosed quote, brace or bracket."""


def split_args(text: str) -> list[str]:
    args: list[str] = []
    current: list[str] = []
    depth = 0
    quote: str | None = None
    escaped = False
    started = False
    for ch in text:
        if quote is not None:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
            current.append(ch)
            started = True
        elif ch in "{[":
            depth += 1
            current.append(ch)
            started = True
        elif ch in "}]":
            depth -= 1
            if depth < 0:
                raise ArgsSyntaxError(f"unbalanced {ch!r} in ARGS")
            current.append(ch)
        elif ch.isspace() and depth == 0:
            if started:
                args.append(_unquote("".join(current)))
                current = []
                started = False
        else:
            current.append(ch)
            started = True
    if quote is not None:
        raise ArgsSyntaxError(f"unclosed {quote} in ARGS")
    if depth != 0:
        raise ArgsSyntaxError("unclosed { or [ in ARGS")
    if started:
        args.append(_unquote("".join(current)))
    return args


def _unquote(arg: str) -> str:
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'" and arg[0] not in arg[1:-1]:
        return arg[1:-1]
    return arg
