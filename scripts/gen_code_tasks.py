#!/usr/bin/env python3
"""Writes spikefm's HumanEval-format code task set: datasets/data/code/code_{train,test}.jsonl.

Every task is a small Python function whose docstring is templated English with its parameters
spelled out ("Return the sum of the elements of xs that are greater than 3."), so that the mapping
docstring -> code is learnable by a tiny decoder. Tasks come from ~50 families (lists, strings,
integers, dicts; several compose two operations). See docs/code_tasks.md for the families, the
split rule and the field definitions.

Output (all deterministic for a given --seed; python3 standard library only):
  code_train.jsonl  HumanEval fields: task_id "spikefm/train/N", prompt, entry_point,
                    canonical_solution, test
  code_test.jsonl   the same, task_id "spikefm/test/N"
  code_meta.jsonl   sidecar: task_id, family, category (train | seen | heldout_constant |
                    heldout_composition), params (the family parameters of the task)

The split is by *solution key* (family + every parameter that appears in the solution): a key is
either train or test, never both. Test keys are of three categories:
  seen                 same family and operations as training tasks, parameter combination unseen
  heldout_constant     uses a constant that this family never uses in training
  heldout_composition  combines operations (or a whole family) that training never combines

Before writing, every canonical solution is run against its own check() with python3 -I in a
subprocess (with a timeout), and so is the wrong completion "    return None", which must fail. If
any canonical solution fails, any wrong completion passes, or a test prompt / solution
(whitespace-normalised) also occurs in training, nothing is written and the exit status is 1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_SEED = 20250101
DEFAULT_TRAIN_TASKS = 4000
EXAMPLE_INPUTS = 5          # inputs per task: the first 1-3 are the docstring examples, all are asserted
VERIFY_BATCH = 400          # programs per python3 subprocess
VERIFY_TIMEOUT_S = 300

# ---- names -------------------------------------------------------------------------------------
LIST_ARGS = [("xs", "x"), ("nums", "n"), ("values", "v"), ("numbers", "num"), ("arr", "a"), ("lst", "e")]
STR_ARGS = [("s", "c"), ("text", "ch"), ("word", "c"), ("line", "ch"), ("msg", "c"), ("phrase", "ch")]
INT_ARGS = ["n", "x", "num", "value", "a"]
DICT_ARGS = ["d", "counts", "scores", "table", "stock", "prices"]
PAIR_ARGS = [("xs", "ys", "x", "y"), ("left", "right", "l", "r"), ("first", "second", "a", "b"),
             ("us", "vs", "u", "v"), ("ps", "qs", "p", "q")]
BIN_ARGS = [("a", "b"), ("x", "y"), ("m", "n"), ("p", "q"), ("left", "right")]

WORDS = ["apple", "banana", "cherry", "hello", "world", "python", "spike", "model", "river", "stone",
         "light", "green", "table", "music", "paper", "ocean", "tiger", "lemon", "cloud", "pixel",
         "robot", "sugar", "delta", "alpha", "omega", "sun", "map", "code", "data", "tree"]
PALINDROMES = ["noon", "level", "radar", "kayak", "refer", "civic", "madam", "stats", "racecar", "wow"]
DICT_KEYS = ["apple", "pear", "milk", "eggs", "tea", "rice", "salt", "bread", "plum", "corn"]

# ---- shared operation vocabularies --------------------------------------------------------------
# Expression precedence, for parenthesising composed expressions the way Python needs them.
ADD, MUL, NEG, POW, ATOM = 1, 2, 3, 4, 5


class Expr:
    def __init__(self, text: str, prec: int):
        self.text, self.prec = text, prec


def wrap(e: Expr, need: int) -> str:
    return e.text if e.prec >= need else "(" + e.text + ")"


# Selections (a predicate on one integer v with constant k): English, code, reference.
SEL_PHRASE = {"gt": "greater than {k}", "lt": "less than {k}", "ge": "at least {k}", "le": "at most {k}",
              "eq": "equal to {k}", "ne": "not equal to {k}", "even": "even", "odd": "odd",
              "div": "divisible by {k}"}
SEL_CODE = {"gt": "{v} > {k}", "lt": "{v} < {k}", "ge": "{v} >= {k}", "le": "{v} <= {k}", "eq": "{v} == {k}",
            "ne": "{v} != {k}", "even": "{v} % 2 == 0", "odd": "{v} % 2 == 1", "div": "{v} % {k} == 0"}
SEL_REF: dict[str, Callable[[int, Any], bool]] = {
    "gt": lambda x, k: x > k, "lt": lambda x, k: x < k, "ge": lambda x, k: x >= k, "le": lambda x, k: x <= k,
    "eq": lambda x, k: x == k, "ne": lambda x, k: x != k, "even": lambda x, k: x % 2 == 0,
    "odd": lambda x, k: x % 2 != 0, "div": lambda x, k: x % k == 0}


def sel_choices(k_max: int = 12) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for op in ("gt", "lt", "ge", "le", "eq", "ne"):
        out += [(op, k) for k in range(0, k_max + 1)]
    out += [("even", None), ("odd", None)]
    out += [("div", k) for k in range(2, 7)]
    return out


def sel_phrase(op: str, k: Any) -> str:
    return SEL_PHRASE[op].format(k=k)


def sel_code(op: str, k: Any, v: str) -> str:
    # v is an atom or a call ("x", "int(c)", "xs[i]"), so no parentheses are needed.
    return SEL_CODE[op].format(k=k, v=v)


def sel_ref(op: str, k: Any, x: int) -> bool:
    return SEL_REF[op](x, k)


# Transforms (integer -> integer with constant m).
TRANS_PHRASE = {"add": "increased by {m}", "sub": "decreased by {m}", "mul": "multiplied by {m}",
                "floordiv": "divided by {m} and rounded down", "mod": "taken modulo {m}", "sq": "squared",
                "neg": "negated"}
def floor_div(x: int, m: int) -> int:
    """x / m rounded towards minus infinity, from truncating division (independent of Python's //)."""
    q = int(x / m)
    return q - 1 if q * m > x else q


TRANS_REF: dict[str, Callable[[int, Any], int]] = {
    "add": lambda x, m: x + m, "sub": lambda x, m: x - m, "mul": lambda x, m: x * m,
    "floordiv": lambda x, m: floor_div(x, m), "mod": lambda x, m: x - m * floor_div(x, m),
    "sq": lambda x, m: x * x, "neg": lambda x, m: 0 - x}


def trans_choices() -> list[tuple[str, Any]]:
    return ([("add", m) for m in range(1, 13)] + [("sub", m) for m in range(1, 13)] +
            [("mul", m) for m in range(2, 10)] + [("floordiv", m) for m in range(2, 7)] +
            [("mod", m) for m in range(2, 7)] + [("sq", None), ("neg", None)])


def trans_phrase(op: str, m: Any) -> str:
    return TRANS_PHRASE[op].format(m=m)


def trans_expr(op: str, m: Any, e: Expr) -> Expr:
    if op == "add":
        return Expr(f"{wrap(e, ADD)} + {m}", ADD)
    if op == "sub":
        return Expr(f"{wrap(e, ADD)} - {m}", ADD)
    if op == "mul":
        return Expr(f"{wrap(e, MUL)} * {m}", MUL)
    if op == "floordiv":
        return Expr(f"{wrap(e, MUL)} // {m}", MUL)
    if op == "mod":
        return Expr(f"{wrap(e, MUL)} % {m}", MUL)
    if op == "sq":
        return Expr(f"{wrap(e, ATOM)} ** 2", POW)
    if op == "neg":
        return Expr(f"-{wrap(e, ATOM)}", NEG)
    raise ValueError(op)


def trans_ref(op: str, m: Any, x: int) -> int:
    return TRANS_REF[op](x, m)


# Post-operations on a scalar result.
POST_PHRASE = {"mul": "then multiply by {p}", "add": "then add {p}", "sub": "then subtract {p}"}


def post_choices() -> list[tuple[str, int]]:
    return [("mul", p) for p in range(2, 6)] + [("add", p) for p in range(1, 11)] + [("sub", p) for p in range(1, 11)]


def post_expr(op: str, p: int, e: Expr) -> Expr:
    return trans_expr(op, p, e)


def post_ref(op: str, p: int, x: int) -> int:
    return {"mul": x * p, "add": x + p, "sub": x - p}[op]


# Character classes of a string.
CLS_PHRASE = {"vowel": "vowels (a, e, i, o, u)", "digit": "digits", "upper": "upper-case letters",
              "lower": "lower-case letters", "space": "spaces", "letter": "letters"}
CLS_POS = {"vowel": "{c} in 'aeiou'", "digit": "{c}.isdigit()", "upper": "{c}.isupper()",
           "lower": "{c}.islower()", "space": "{c} == ' '", "letter": "{c}.isalpha()"}
CLS_NEG = {"vowel": "{c} not in 'aeiou'", "digit": "not {c}.isdigit()", "upper": "not {c}.isupper()",
           "lower": "not {c}.islower()", "space": "{c} != ' '", "letter": "not {c}.isalpha()"}
CLS_REF: dict[str, Callable[[str], bool]] = {
    "vowel": lambda ch: ch in ("a", "e", "i", "o", "u"), "digit": lambda ch: "0" <= ch <= "9",
    "upper": lambda ch: "A" <= ch <= "Z", "lower": lambda ch: "a" <= ch <= "z", "space": lambda ch: ch == " ",
    "letter": lambda ch: "a" <= ch.lower() <= "z"}


# ---- random inputs -------------------------------------------------------------------------------
def rand_ints(rng: random.Random, lo: int = 0, hi: int = 15, n_lo: int = 3, n_hi: int = 7,
              near: Any = None) -> list[int]:
    xs = [rng.randint(lo, hi) for _ in range(rng.randint(n_lo, n_hi))]
    if isinstance(near, int) and rng.random() < 0.5:  # put the threshold itself in, to tell > from >=
        xs[rng.randrange(len(xs))] = near
    return xs


def rand_text(rng: random.Random, words: int | None = None, mixed: bool = False) -> str:
    n = words if words is not None else rng.randint(1, 3)
    out = []
    for _ in range(n):
        w = rng.choice(WORDS)
        if mixed:
            r = rng.random()
            if r < 0.3:
                w = w.capitalize()
            elif r < 0.45:
                w = w.upper()
            elif r < 0.65:
                w = w + str(rng.randint(0, 99))
        out.append(w)
    return " ".join(out)


def rand_dict(rng: random.Random, lo: int = 0, hi: int = 15, near: Any = None, n_lo: int = 2,
              n_hi: int = 5) -> dict[str, int]:
    keys = rng.sample(DICT_KEYS, rng.randint(n_lo, n_hi))
    d = {k: rng.randint(lo, hi) for k in keys}
    if isinstance(near, int) and rng.random() < 0.5:
        d[keys[rng.randrange(len(keys))]] = near
    return d


# ---- families -------------------------------------------------------------------------------------
@dataclass
class Family:
    name: str
    names: list[str]                                # entry-point names to draw from
    keys: Callable[[], list[dict]]                   # every solution key of the family
    doc: Callable[[dict], str]                       # the description sentence
    sig: Callable[[dict], tuple[list[tuple[str, str]], str]]  # ([(param, type)], return type)
    body: Callable[[dict], str]                      # canonical solution (indented body)
    ref: Callable[..., Any]                          # ref(key, *args): the expected result, computed directly
    gen: Callable[[dict, random.Random], tuple]      # one random argument tuple
    consts: tuple[str, ...] = ()                     # key fields that are constants (for held-out constants)
    comp: Callable[[dict], tuple] | None = None      # the composition of a key (for held-out compositions)
    whole_heldout: bool = False                      # the whole family is a test-only composition


FAMILIES: list[Family] = []


def family(**kw) -> None:
    FAMILIES.append(Family(**kw))


def K(**kw) -> dict:
    return kw


def one_line(code: str) -> str:
    return "    return " + code + "\n"


# --- lists: selection / transform / aggregation pipelines ---
def list_sig(ret: str) -> Callable[[dict], tuple]:
    return lambda k: ([(k["arg"], "list[int]")], ret)


def lv(key: dict) -> str:
    return dict(LIST_ARGS)[key["arg"]]


def list_gen(lo=0, hi=15, n_lo=3, n_hi=7):
    return lambda key, rng: (rand_ints(rng, lo, hi, n_lo, n_hi, near=key.get("k")),)


ARGS_L = [a for a, _ in LIST_ARGS]

family(name="list_filter", names=["select_values", "keep_matching", "filter_list", "pick_elements", "matching_items"],
       keys=lambda: [K(arg=a, sel=s, k=k) for a in ARGS_L for s, k in sel_choices()],
       doc=lambda key: f"Return a list of the elements of {key['arg']} that are {sel_phrase(key['sel'], key['k'])}.",
       sig=list_sig("list[int]"),
       body=lambda key: one_line(f"[{lv(key)} for {lv(key)} in {key['arg']} if {sel_code(key['sel'], key['k'], lv(key))}]"),
       ref=lambda key, xs: [x for x in xs if sel_ref(key["sel"], key["k"], x)],
       gen=list_gen(), consts=("k",))

family(name="list_map", names=["transform_all", "map_values", "convert_list", "adjust_elements", "apply_to_all"],
       keys=lambda: [K(arg=a, trans=t, m=m) for a in ARGS_L for t, m in trans_choices()],
       doc=lambda key: f"Return a list of the elements of {key['arg']}, each {trans_phrase(key['trans'], key['m'])}.",
       sig=list_sig("list[int]"),
       body=lambda key: one_line(f"[{trans_expr(key['trans'], key['m'], Expr(lv(key), ATOM)).text} for {lv(key)} in {key['arg']}]"),
       ref=lambda key, xs: [trans_ref(key["trans"], key["m"], x) for x in xs],
       gen=list_gen(-5, 15), consts=("m",))

family(name="list_filter_map", names=["select_and_transform", "filter_then_map", "process_values", "pick_and_change"],
       keys=lambda: [K(arg=a, sel=s, k=k, trans=t, m=m) for a in ARGS_L for s, k in sel_choices()
                     for t, m in trans_choices()],
       doc=lambda key: (f"Return a list of the elements of {key['arg']} that are {sel_phrase(key['sel'], key['k'])}, "
                        f"each {trans_phrase(key['trans'], key['m'])}."),
       sig=list_sig("list[int]"),
       body=lambda key: one_line(f"[{trans_expr(key['trans'], key['m'], Expr(lv(key), ATOM)).text} for {lv(key)} in "
                                 f"{key['arg']} if {sel_code(key['sel'], key['k'], lv(key))}]"),
       ref=lambda key, xs: [trans_ref(key["trans"], key["m"], x) for x in xs if sel_ref(key["sel"], key["k"], x)],
       gen=list_gen(-3, 15), consts=("k", "m"), comp=lambda key: (key["sel"], key["trans"]))

family(name="sum_all", names=["total", "sum_values", "add_all", "list_total", "grand_total"],
       keys=lambda: [K(arg=a, post=p, p=pv) for a in ARGS_L for p, pv in [("none", None)] + post_choices()],
       doc=lambda key: (f"Return the sum of the elements of {key['arg']}" +
                        ("." if key["post"] == "none" else f", {POST_PHRASE[key['post']].format(p=key['p'])}.")),
       sig=list_sig("int"),
       body=lambda key: one_line((Expr(f"sum({key['arg']})", ATOM) if key["post"] == "none"
                                  else post_expr(key["post"], key["p"], Expr(f"sum({key['arg']})", ATOM))).text),
       ref=lambda key, xs: (lambda t: t if key["post"] == "none" else post_ref(key["post"], key["p"], t))(_loop_sum(xs)),
       gen=list_gen(0, 15, 0, 6), consts=("p",))


def _loop_sum(xs):
    t = 0
    for x in xs:
        t = t + x
    return t


family(name="sum_filter", names=["sum_selected", "total_matching", "sum_if", "add_matching", "selected_total"],
       keys=lambda: [K(arg=a, sel=s, k=k) for a in ARGS_L for s, k in sel_choices()],
       doc=lambda key: f"Return the sum of the elements of {key['arg']} that are {sel_phrase(key['sel'], key['k'])}.",
       sig=list_sig("int"),
       body=lambda key: one_line(f"sum({lv(key)} for {lv(key)} in {key['arg']} if {sel_code(key['sel'], key['k'], lv(key))})"),
       ref=lambda key, xs: _loop_sum([x for x in xs if sel_ref(key["sel"], key["k"], x)]),
       gen=list_gen(), consts=("k",))

family(name="sum_map", names=["sum_transformed", "total_after_change", "sum_of_mapped", "mapped_total"],
       keys=lambda: [K(arg=a, trans=t, m=m) for a in ARGS_L for t, m in trans_choices()],
       doc=lambda key: f"Return the sum of the elements of {key['arg']}, each {trans_phrase(key['trans'], key['m'])}.",
       sig=list_sig("int"),
       body=lambda key: one_line(f"sum({trans_expr(key['trans'], key['m'], Expr(lv(key), ATOM)).text} for {lv(key)} in {key['arg']})"),
       ref=lambda key, xs: _loop_sum([trans_ref(key["trans"], key["m"], x) for x in xs]),
       gen=list_gen(-5, 15), consts=("m",))

family(name="sum_filter_map", names=["sum_selected_transformed", "filtered_mapped_total", "process_and_sum", "select_change_sum"],
       keys=lambda: [K(arg=a, sel=s, k=k, trans=t, m=m) for a in ARGS_L for s, k in sel_choices()
                     for t, m in trans_choices()],
       doc=lambda key: (f"Return the sum of the elements of {key['arg']} that are {sel_phrase(key['sel'], key['k'])}, "
                        f"each {trans_phrase(key['trans'], key['m'])}."),
       sig=list_sig("int"),
       body=lambda key: one_line(f"sum({trans_expr(key['trans'], key['m'], Expr(lv(key), ATOM)).text} for {lv(key)} in "
                                 f"{key['arg']} if {sel_code(key['sel'], key['k'], lv(key))})"),
       ref=lambda key, xs: _loop_sum([trans_ref(key["trans"], key["m"], x) for x in xs
                                      if sel_ref(key["sel"], key["k"], x)]),
       gen=list_gen(-3, 15), consts=("k", "m"), comp=lambda key: (key["sel"], key["trans"]))

family(name="count_filter", names=["count_matching", "how_many", "count_if", "number_selected", "tally"],
       keys=lambda: [K(arg=a, sel=s, k=k) for a in ARGS_L for s, k in sel_choices()],
       doc=lambda key: f"Return the number of elements of {key['arg']} that are {sel_phrase(key['sel'], key['k'])}.",
       sig=list_sig("int"),
       body=lambda key: one_line(f"sum(1 for {lv(key)} in {key['arg']} if {sel_code(key['sel'], key['k'], lv(key))})"),
       ref=lambda key, xs: len([x for x in xs if sel_ref(key["sel"], key["k"], x)]),
       gen=list_gen(), consts=("k",))

family(name="sum_filter_post", names=["sum_selected_then", "adjusted_total", "scaled_selected_sum", "total_then_adjust"],
       keys=lambda: [K(arg=a, sel=s, k=k, post=p, p=pv) for a in ARGS_L for s, k in sel_choices()
                     for p, pv in post_choices()],
       doc=lambda key: (f"Return the sum of the elements of {key['arg']} that are {sel_phrase(key['sel'], key['k'])}, "
                        f"{POST_PHRASE[key['post']].format(p=key['p'])}."),
       sig=list_sig("int"),
       body=lambda key: one_line(post_expr(key["post"], key["p"], Expr(
           f"sum({lv(key)} for {lv(key)} in {key['arg']} if {sel_code(key['sel'], key['k'], lv(key))})", ATOM)).text),
       ref=lambda key, xs: post_ref(key["post"], key["p"], _loop_sum([x for x in xs if sel_ref(key["sel"], key["k"], x)])),
       gen=list_gen(), consts=("k", "p"), comp=lambda key: (key["sel"], key["post"]))

family(name="count_filter_post", names=["count_then_adjust", "adjusted_count", "scaled_count", "tally_then"],
       keys=lambda: [K(arg=a, sel=s, k=k, post=p, p=pv) for a in ARGS_L for s, k in sel_choices()
                     for p, pv in post_choices()],
       doc=lambda key: (f"Return the number of elements of {key['arg']} that are {sel_phrase(key['sel'], key['k'])}, "
                        f"{POST_PHRASE[key['post']].format(p=key['p'])}."),
       sig=list_sig("int"),
       body=lambda key: one_line(post_expr(key["post"], key["p"], Expr(
           f"sum(1 for {lv(key)} in {key['arg']} if {sel_code(key['sel'], key['k'], lv(key))})", ATOM)).text),
       ref=lambda key, xs: post_ref(key["post"], key["p"], len([x for x in xs if sel_ref(key["sel"], key["k"], x)])),
       gen=list_gen(), consts=("k", "p"), comp=lambda key: (key["sel"], key["post"]))


def _extreme_ref(which, xs):
    best_hi, best_lo = xs[0], xs[0]
    for x in xs:
        best_hi = x if x > best_hi else best_hi
        best_lo = x if x < best_lo else best_lo
    return {"max": best_hi, "min": best_lo, "range": best_hi - best_lo}[which]


EXTREME_DOC = {"max": "Return the largest element of {a}.", "min": "Return the smallest element of {a}.",
               "range": "Return the largest element of {a} minus the smallest element of {a}."}
EXTREME_CODE = {"max": "max({a})", "min": "min({a})", "range": "max({a}) - min({a})"}

family(name="extreme_all", names=["extreme_value", "find_extreme", "peak", "spread", "bound_of"],
       keys=lambda: [K(arg=a, which=w) for a in ARGS_L for w in ("max", "min", "range")],
       doc=lambda key: EXTREME_DOC[key["which"]].format(a=key["arg"]),
       sig=list_sig("int"),
       body=lambda key: one_line(EXTREME_CODE[key["which"]].format(a=key["arg"])),
       ref=lambda key, xs: _extreme_ref(key["which"], xs),
       gen=list_gen(-10, 20, 1, 7))

family(name="extreme_filter", names=["best_matching", "extreme_selected", "top_matching", "pick_extreme"],
       keys=lambda: [K(arg=a, which=w, sel=s, k=k, default=dflt) for a in ARGS_L for w in ("max", "min")
                     for s, k in sel_choices() for dflt in (0, -1)],
       doc=lambda key: (f"Return the {'largest' if key['which'] == 'max' else 'smallest'} element of {key['arg']} "
                        f"that is {sel_phrase(key['sel'], key['k'])}, or {key['default']} if there is none."),
       sig=list_sig("int"),
       body=lambda key: one_line(f"{key['which']}(({lv(key)} for {lv(key)} in {key['arg']} if "
                                 f"{sel_code(key['sel'], key['k'], lv(key))}), default={key['default']})"),
       ref=lambda key, xs: (lambda sel: key["default"] if not sel else _extreme_ref(key["which"], sel))(
           [x for x in xs if sel_ref(key["sel"], key["k"], x)]),
       gen=list_gen(0, 15, 1, 6), consts=("k", "default"), comp=lambda key: (key["which"], key["sel"]))

QUANT_DOC = {"all": "every element of {a} is", "any": "at least one element of {a} is", "none": "no element of {a} is"}

family(name="all_any", names=["check_all", "has_match", "test_elements", "all_or_any", "verify_values"],
       keys=lambda: [K(arg=a, q=q, sel=s, k=k) for a in ARGS_L for q in ("all", "any", "none")
                     for s, k in sel_choices()],
       doc=lambda key: (f"Return True if {QUANT_DOC[key['q']].format(a=key['arg'])} "
                        f"{sel_phrase(key['sel'], key['k'])}, else False."),
       sig=list_sig("bool"),
       body=lambda key: one_line(("not any" if key["q"] == "none" else key["q"]) +
                                 f"({sel_code(key['sel'], key['k'], lv(key))} for {lv(key)} in {key['arg']})"),
       ref=lambda key, xs: (lambda hits: {"all": hits == len(xs), "any": hits > 0, "none": hits == 0}[key["q"]])(
           len([x for x in xs if sel_ref(key["sel"], key["k"], x)])),
       gen=list_gen(0, 12, 1, 5), consts=("k",), comp=lambda key: (key["q"], key["sel"]))


def _find_body(key):
    a, v = key["arg"], lv(key)
    if key["which"] == "first":
        return (f"    for i, {v} in enumerate({a}):\n"
                f"        if {sel_code(key['sel'], key['k'], v)}:\n"
                f"            return i\n"
                f"    return -1\n")
    return (f"    for i in range(len({a}) - 1, -1, -1):\n"
            f"        if {sel_code(key['sel'], key['k'], a + '[i]')}:\n"
            f"            return i\n"
            f"    return -1\n")


def _find_ref(key, xs):
    idx = [i for i in range(len(xs)) if sel_ref(key["sel"], key["k"], xs[i])]
    if not idx:
        return -1
    return idx[0] if key["which"] == "first" else idx[-1]


family(name="find_index", names=["find_index", "locate", "index_of_match", "position_of", "search"],
       keys=lambda: [K(arg=a, which=w, sel=s, k=k) for a in ARGS_L for w in ("first", "last")
                     for s, k in sel_choices()],
       doc=lambda key: (f"Return the index of the {key['which']} element of {key['arg']} that is "
                        f"{sel_phrase(key['sel'], key['k'])}, or -1 if there is none."),
       sig=list_sig("int"),
       body=_find_body, ref=_find_ref, gen=list_gen(0, 12, 1, 6), consts=("k",))

TAKE_DOC = {"first": "Return the first {k} elements of {a}.", "last": "Return the last {k} elements of {a}.",
            "drop_first": "Return {a} without its first {k} elements.",
            "drop_last": "Return {a} without its last {k} elements.",
            "step": "Return the elements of {a} whose index is a multiple of {k}."}
TAKE_CODE = {"first": "{a}[:{k}]", "last": "{a}[-{k}:]", "drop_first": "{a}[{k}:]", "drop_last": "{a}[:-{k}]",
             "step": "{a}[::{k}]"}


def _take_ref(key, xs):
    k, n = key["k"], len(xs)
    keep = {"first": lambda i: i < k, "last": lambda i: i >= n - k, "drop_first": lambda i: i >= k,
            "drop_last": lambda i: i < n - k, "step": lambda i: i % k == 0}[key["op"]]
    return [xs[i] for i in range(n) if keep(i)]


family(name="list_take", names=["take_part", "slice_list", "part_of", "trim_list", "cut"],
       keys=lambda: [K(arg=a, op=o, k=k) for a in ARGS_L for o in TAKE_DOC
                     for k in (range(2, 6) if o == "step" else range(1, 7))],
       doc=lambda key: TAKE_DOC[key["op"]].format(a=key["arg"], k=key["k"]),
       sig=list_sig("list[int]"),
       body=lambda key: one_line(TAKE_CODE[key["op"]].format(a=key["arg"], k=key["k"])),
       ref=_take_ref, gen=list_gen(0, 20, 2, 9), consts=("k",))

ORDER_DOC = {"reverse": "Return the elements of {a} in reverse order.",
             "asc": "Return the elements of {a} sorted in ascending order.",
             "desc": "Return the elements of {a} sorted in descending order.",
             "distinct": "Return the distinct elements of {a} sorted in ascending order."}
ORDER_CODE = {"reverse": "{a}[::-1]", "asc": "sorted({a})", "desc": "sorted({a}, reverse=True)",
              "distinct": "sorted(set({a}))"}


def _insertion_sort(xs):
    out = []
    for x in xs:
        i = 0
        while i < len(out) and out[i] <= x:
            i += 1
        out.insert(i, x)
    return out


def _order_ref(key, xs):
    op = key["op"]
    if op == "reverse":
        return [xs[len(xs) - 1 - i] for i in range(len(xs))]
    if op == "asc":
        return _insertion_sort(xs)
    if op == "desc":
        return _insertion_sort(xs)[::-1]
    return _insertion_sort([x for i, x in enumerate(xs) if x not in xs[:i]])


family(name="list_order", names=["reorder", "arrange", "order_values", "sort_or_flip", "rearrange"],
       keys=lambda: [K(arg=a, op=o) for a in ARGS_L for o in ORDER_DOC],
       doc=lambda key: ORDER_DOC[key["op"]].format(a=key["arg"]),
       sig=list_sig("list[int]"),
       body=lambda key: one_line(ORDER_CODE[key["op"]].format(a=key["arg"])),
       ref=_order_ref, gen=list_gen(0, 9, 2, 7))

family(name="element_at", names=["element_at", "get_item", "nth_value", "pick_position", "value_at"],
       keys=lambda: ([K(arg=a, end=False, k=k) for a in ARGS_L for k in range(0, 5)] +
                     [K(arg=a, end=True, k=k) for a in ARGS_L for k in range(1, 5)]),
       doc=lambda key: (f"Return the element of {key['arg']} at index {key['k']}." if not key["end"] else
                        f"Return the element of {key['arg']} at position {key['k']} from the end, "
                        f"where position 1 is the last element."),
       sig=list_sig("int"),
       body=lambda key: one_line(f"{key['arg']}[{'-' if key['end'] else ''}{key['k']}]"),
       ref=lambda key, xs: xs[len(xs) - key["k"]] if key["end"] else xs[key["k"]],
       gen=list_gen(0, 30, 5, 8), consts=("k",))


def _product_body(key):
    a, v = key["arg"], lv(key)
    if key["sel"] == "all":
        return f"    result = 1\n    for {v} in {a}:\n        result *= {v}\n    return result\n"
    return (f"    result = 1\n    for {v} in {a}:\n        if {sel_code(key['sel'], key['k'], v)}:\n"
            f"            result *= {v}\n    return result\n")


def _product_ref(key, xs):
    r = 1
    for x in xs:
        if key["sel"] == "all" or sel_ref(key["sel"], key["k"], x):
            r = r * x
    return r


family(name="product", names=["product_of", "multiply_all", "product_selected", "mult_values", "times_all"],
       keys=lambda: [K(arg=a, sel=s, k=k) for a in ARGS_L for s, k in [("all", None)] + sel_choices(9)],
       doc=lambda key: (f"Return the product of the elements of {key['arg']}." if key["sel"] == "all" else
                        f"Return the product of the elements of {key['arg']} that are "
                        f"{sel_phrase(key['sel'], key['k'])}, or 1 if there are none."),
       sig=list_sig("int"), body=_product_body, ref=_product_ref,
       gen=lambda key, rng: (rand_ints(rng, 0, 9, 2, 5, near=key.get("k")),), consts=("k",))

family(name="clip_list", names=["clip_values", "cap_values", "limit_all", "bound_values", "clamp_list"],
       keys=lambda: [K(arg=a, side=sd, k=k) for a in ARGS_L for sd in ("upper", "lower") for k in range(0, 13)],
       doc=lambda key: (f"Return a list of the elements of {key['arg']}, with every element "
                        f"{'greater' if key['side'] == 'upper' else 'less'} than {key['k']} replaced by {key['k']}."),
       sig=list_sig("list[int]"),
       body=lambda key: one_line(f"[{'min' if key['side'] == 'upper' else 'max'}({lv(key)}, {key['k']}) for {lv(key)} "
                                 f"in {key['arg']}]"),
       ref=lambda key, xs: [(key["k"] if x > key["k"] else x) if key["side"] == "upper" else
                            (key["k"] if x < key["k"] else x) for x in xs],
       gen=list_gen(0, 15), consts=("k",))

ZIP_DOC = {"add": "Return a list of the sums of the elements of {a} and {b} at the same positions.",
           "sub": "Return a list of each element of {a} minus the element of {b} at the same position.",
           "mul": "Return a list of the products of the elements of {a} and {b} at the same positions.",
           "max": "Return a list of the larger of the elements of {a} and {b} at each position.",
           "min": "Return a list of the smaller of the elements of {a} and {b} at each position."}
ZIP_CODE = {"add": "{x} + {y}", "sub": "{x} - {y}", "mul": "{x} * {y}", "max": "max({x}, {y})", "min": "min({x}, {y})"}
ZIP_REF = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
           "max": lambda x, y: x if x >= y else y, "min": lambda x, y: x if x <= y else y}
PAIRS = {p[0]: p for p in PAIR_ARGS}


def _zip_gen(key, rng):
    n = rng.randint(1, 6)
    return ([rng.randint(-5, 12) for _ in range(n)], [rng.randint(-5, 12) for _ in range(n)])


family(name="zip_op", names=["combine_lists", "pairwise", "merge_values", "zip_with", "elementwise"],
       keys=lambda: [K(arg=p[0], op=o) for p in PAIR_ARGS for o in ZIP_DOC],
       doc=lambda key: ZIP_DOC[key["op"]].format(a=PAIRS[key["arg"]][0], b=PAIRS[key["arg"]][1]),
       sig=lambda key: ([(PAIRS[key["arg"]][0], "list[int]"), (PAIRS[key["arg"]][1], "list[int]")], "list[int]"),
       body=lambda key: (lambda a, b, x, y: one_line(
           f"[{ZIP_CODE[key['op']].format(x=x, y=y)} for {x}, {y} in zip({a}, {b})]"))(*PAIRS[key["arg"]]),
       ref=lambda key, xs, ys: [ZIP_REF[key["op"]](xs[i], ys[i]) for i in range(len(xs))],
       gen=_zip_gen)


def _running_body(key):
    a, v = key["arg"], lv(key)
    start, upd = ("0", "+=") if key["op"] == "sum" else ("1", "*=")
    return (f"    result = []\n    acc = {start}\n    for {v} in {a}:\n        acc {upd} {v}\n"
            f"        result.append(acc)\n    return result\n")


def _running_ref(key, xs):
    out = []
    for i in range(len(xs)):
        part = xs[: i + 1]
        if key["op"] == "sum":
            out.append(_loop_sum(part))
        else:
            out.append(_product_ref({"sel": "all", "k": None}, part))
    return out


family(name="running", names=["running_total", "prefix_values", "cumulative", "accumulate_list", "partial_results"],
       keys=lambda: [K(arg=a, op=o) for a in ARGS_L for o in ("sum", "product")],
       doc=lambda key: (f"Return the running {'sums' if key['op'] == 'sum' else 'products'} of {key['arg']}: element i "
                        f"of the result is the {key['op']} of the first i + 1 elements of {key['arg']}."),
       sig=list_sig("list[int]"), body=_running_body, ref=_running_ref,
       gen=lambda key, rng: (rand_ints(rng, 0 if key["op"] == "product" else -5, 6 if key["op"] == "product" else 15, 0, 6),))

# --- strings ---
ARGS_S = [a for a, _ in STR_ARGS]


def sv(key: dict) -> str:
    return dict(STR_ARGS)[key["arg"]]


def str_sig(ret: str) -> Callable[[dict], tuple]:
    return lambda k: ([(k["arg"], "str")], ret)


def text_with(rng: random.Random, must: str | None = None, mixed: bool = False) -> str:
    s = rand_text(rng, mixed=mixed)
    if must and must not in s and rng.random() < 0.7:
        i = rng.randrange(len(s) + 1)
        s = s[:i] + must + s[i:]
    return s


def _replace_ref(s, a, b):
    out = ""
    for ch in s:
        out += b if ch == a else ch
    return out


A_CHARS = "aeilnorstu"
B_CHARS = "aeilnorstuxyz_-*"

family(name="str_replace", names=["replace_char", "swap_letter", "substitute", "change_letter", "rewrite"],
       keys=lambda: [K(arg=s, a=a, b=b) for s in ARGS_S for a in A_CHARS for b in B_CHARS if a != b],
       doc=lambda key: f"Return {key['arg']} with every '{key['a']}' replaced by '{key['b']}'.",
       sig=str_sig("str"),
       body=lambda key: one_line(f"{key['arg']}.replace('{key['a']}', '{key['b']}')"),
       ref=lambda key, s: _replace_ref(s, key["a"], key["b"]),
       gen=lambda key, rng: (text_with(rng, key["a"]),), consts=("a", "b"))

family(name="str_remove", names=["remove_char", "strip_letter", "delete_letter", "without_char", "drop_char"],
       keys=lambda: [K(arg=s, a=a) for s in ARGS_S for a in A_CHARS],
       doc=lambda key: f"Return {key['arg']} with every '{key['a']}' removed.",
       sig=str_sig("str"),
       body=lambda key: one_line(f"{key['arg']}.replace('{key['a']}', '')"),
       ref=lambda key, s: _replace_ref(s, key["a"], ""),
       gen=lambda key, rng: (text_with(rng, key["a"]),), consts=("a",))

family(name="str_count_char", names=["count_char", "occurrences", "letter_count", "count_letter", "times_seen"],
       keys=lambda: [K(arg=s, a=a) for s in ARGS_S for a in A_CHARS],
       doc=lambda key: f"Return the number of times '{key['a']}' occurs in {key['arg']}.",
       sig=str_sig("int"),
       body=lambda key: one_line(f"{key['arg']}.count('{key['a']}')"),
       ref=lambda key, s: len([ch for ch in s if ch == key["a"]]),
       gen=lambda key, rng: (text_with(rng, key["a"]),), consts=("a",))

family(name="str_count_class", names=["count_kind", "count_chars", "char_tally", "class_count", "how_many_chars"],
       keys=lambda: [K(arg=s, cls=c) for s in ARGS_S for c in CLS_PHRASE],
       doc=lambda key: f"Return the number of {CLS_PHRASE[key['cls']]} in {key['arg']}.",
       sig=str_sig("int"),
       body=lambda key: one_line(f"sum(1 for {sv(key)} in {key['arg']} if {CLS_POS[key['cls']].format(c=sv(key))})"),
       ref=lambda key, s: len([ch for ch in s if CLS_REF[key["cls"]](ch)]),
       gen=lambda key, rng: (rand_text(rng, mixed=True),))

family(name="str_keep_class", names=["keep_chars", "filter_chars", "only_kind", "strip_kind", "select_chars"],
       keys=lambda: [K(arg=s, mode=m, cls=c) for s in ARGS_S for m in ("keep", "drop") for c in CLS_PHRASE],
       doc=lambda key: (f"Return a string of the {CLS_PHRASE[key['cls']]} of {key['arg']}, in their original order."
                        if key["mode"] == "keep" else
                        f"Return {key['arg']} with all its {CLS_PHRASE[key['cls']]} removed."),
       sig=str_sig("str"),
       body=lambda key: one_line(f"''.join({sv(key)} for {sv(key)} in {key['arg']} if "
                                 f"{(CLS_POS if key['mode'] == 'keep' else CLS_NEG)[key['cls']].format(c=sv(key))})"),
       ref=lambda key, s: "".join([ch for ch in s if CLS_REF[key["cls"]](ch) == (key["mode"] == "keep")]),
       gen=lambda key, rng: (rand_text(rng, mixed=True),), comp=lambda key: (key["mode"], key["cls"]))

CASE_DOC = {"upper": "Return {a} in upper case.", "lower": "Return {a} in lower case.",
            "swapcase": "Return {a} with the case of every letter swapped.",
            "capitalize": "Return {a} with its first character in upper case and the rest in lower case."}


def _case_ref(op, s):
    up = {chr(c): chr(c - 32) for c in range(ord("a"), ord("z") + 1)}
    lo = {v: k for k, v in up.items()}
    if op == "upper":
        return "".join(up.get(ch, ch) for ch in s)
    if op == "lower":
        return "".join(lo.get(ch, ch) for ch in s)
    if op == "swapcase":
        return "".join(up.get(ch, lo.get(ch, ch)) for ch in s)
    return _case_ref("upper", s[:1]) + _case_ref("lower", s[1:])


family(name="str_case", names=["change_case", "recase", "case_convert", "format_case", "to_case"],
       keys=lambda: [K(arg=s, op=o) for s in ARGS_S for o in CASE_DOC],
       doc=lambda key: CASE_DOC[key["op"]].format(a=key["arg"]),
       sig=str_sig("str"),
       body=lambda key: one_line(f"{key['arg']}.{key['op']}()"),
       ref=lambda key, s: _case_ref(key["op"], s),
       gen=lambda key, rng: (rand_text(rng, mixed=True),))

AFFIXES = ["!", "?", "...", "ab", "x", "--", "_", "ok", "end", "pre"]

family(name="str_affix", names=["add_affix", "decorate", "attach", "extend_text", "wrap_text"],
       keys=lambda: [K(arg=s, where=w, t=t) for s in ARGS_S for w in ("end", "front") for t in AFFIXES],
       doc=lambda key: f"Return {key['arg']} with '{key['t']}' added to the {key['where']}.",
       sig=str_sig("str"),
       body=lambda key: one_line(f"{key['arg']} + '{key['t']}'" if key["where"] == "end" else f"'{key['t']}' + {key['arg']}"),
       ref=lambda key, s: "".join([s, key["t"]] if key["where"] == "end" else [key["t"], s]),
       gen=lambda key, rng: (rand_text(rng),), consts=("t",))

PROBES = ["he", "ap", "or", "an", "a", "e", "lo", "ing", "st", "er"]
AFFIX_TEST_DOC = {"starts": "Return True if {a} starts with '{t}', else False.",
                  "ends": "Return True if {a} ends with '{t}', else False.",
                  "contains": "Return True if '{t}' occurs in {a}, else False."}
AFFIX_TEST_CODE = {"starts": "{a}.startswith('{t}')", "ends": "{a}.endswith('{t}')", "contains": "'{t}' in {a}"}


def _affix_test_ref(key, s):
    t, n = key["t"], len(key["t"])
    if key["where"] == "starts":
        return s[:n] == t
    if key["where"] == "ends":
        return len(s) >= n and s[len(s) - n:] == t
    return any(s[i:i + n] == t for i in range(len(s) - n + 1))


def _affix_test_gen(key, rng):
    s = rand_text(rng)
    if rng.random() < 0.5:
        s = {"starts": key["t"] + s, "ends": s + key["t"], "contains": s[:2] + key["t"] + s[2:]}[key["where"]]
    return (s,)


family(name="str_affix_test", names=["has_affix", "check_text", "text_matches", "probe", "test_string"],
       keys=lambda: [K(arg=s, where=w, t=t) for s in ARGS_S for w in AFFIX_TEST_DOC for t in PROBES],
       doc=lambda key: AFFIX_TEST_DOC[key["where"]].format(a=key["arg"], t=key["t"]),
       sig=str_sig("bool"),
       body=lambda key: one_line(AFFIX_TEST_CODE[key["where"]].format(a=key["arg"], t=key["t"])),
       ref=_affix_test_ref, gen=_affix_test_gen, consts=("t",))

SLICE_DOC = {"first": "Return the first {k} characters of {a}.", "last": "Return the last {k} characters of {a}.",
             "drop_first": "Return {a} without its first {k} characters.",
             "drop_last": "Return {a} without its last {k} characters.",
             "step": "Return the characters of {a} whose index is a multiple of {k}.",
             "reverse": "Return {a} reversed."}
SLICE_CODE = {"first": "{a}[:{k}]", "last": "{a}[-{k}:]", "drop_first": "{a}[{k}:]", "drop_last": "{a}[:-{k}]",
              "step": "{a}[::{k}]", "reverse": "{a}[::-1]"}


def _slice_ref(key, s):
    if key["op"] == "reverse":
        return "".join(s[len(s) - 1 - i] for i in range(len(s)))
    return "".join(_take_ref(key, list(s)))


family(name="str_slice", names=["slice_text", "cut_text", "part_of_text", "trim_text", "piece"],
       keys=lambda: ([K(arg=s, op=o, k=k) for s in ARGS_S for o in SLICE_DOC if o not in ("reverse", "step")
                      for k in range(1, 7)] + [K(arg=s, op="step", k=k) for s in ARGS_S for k in range(2, 5)] +
                     [K(arg=s, op="reverse", k=None) for s in ARGS_S]),
       doc=lambda key: SLICE_DOC[key["op"]].format(a=key["arg"], k=key["k"]),
       sig=str_sig("str"),
       body=lambda key: one_line(SLICE_CODE[key["op"]].format(a=key["arg"], k=key["k"])),
       ref=_slice_ref, gen=lambda key, rng: (rand_text(rng),), consts=("k",))

SEPS = [" ", "-", ",", "|", "+", "/"]

family(name="str_repeat", names=["repeat_text", "copies", "echo", "duplicate", "multiply_text"],
       keys=lambda: ([K(arg=s, k=k, sep=None) for s in ARGS_S for k in range(2, 6)] +
                     [K(arg=s, k=k, sep=p) for s in ARGS_S for k in range(2, 6) for p in SEPS]),
       doc=lambda key: (f"Return {key['arg']} repeated {key['k']} times." if key["sep"] is None else
                        f"Return {key['k']} copies of {key['arg']} joined by '{key['sep']}'."),
       sig=str_sig("str"),
       body=lambda key: one_line(f"{key['arg']} * {key['k']}" if key["sep"] is None else
                                 f"'{key['sep']}'.join([{key['arg']}] * {key['k']})"),
       ref=lambda key, s: "".join(s + ("" if key["sep"] is None or i == key["k"] - 1 else key["sep"])
                                  for i in range(key["k"])),
       gen=lambda key, rng: (rng.choice(WORDS + ["ab", "x", "hi"]),), consts=("k", "sep"))

# str_chain2: two string operations applied in order.
CHAIN_A, CHAIN_B, CHAIN_T = "aeost", "xyz_-", ["!", "?", "..", "ab", "xy"]


def chain_ops() -> list[tuple]:
    return ([("upper",), ("lower",), ("reverse",)] + [("replace", a, b) for a in CHAIN_A for b in CHAIN_B] +
            [("remove", a) for a in CHAIN_A] + [("add_end", t) for t in CHAIN_T] + [("add_front", t) for t in CHAIN_T])


def chain_phrase(op: tuple) -> str:
    return {"upper": "in upper case", "lower": "in lower case", "reverse": "reversed",
            "replace": "with every '{1}' replaced by '{2}'", "remove": "with every '{1}' removed",
            "add_end": "with '{1}' added to the end", "add_front": "with '{1}' added to the front"}[op[0]].format(*op)


def chain_expr(op: tuple, e: Expr) -> Expr:
    kind = op[0]
    if kind in ("upper", "lower"):
        return Expr(f"{wrap(e, ATOM)}.{kind}()", ATOM)
    if kind == "reverse":
        return Expr(f"{wrap(e, ATOM)}[::-1]", ATOM)
    if kind == "replace":
        return Expr(f"{wrap(e, ATOM)}.replace('{op[1]}', '{op[2]}')", ATOM)
    if kind == "remove":
        return Expr(f"{wrap(e, ATOM)}.replace('{op[1]}', '')", ATOM)
    if kind == "add_end":
        return Expr(f"{wrap(e, ADD)} + '{op[1]}'", ADD)
    return Expr(f"'{op[1]}' + {wrap(e, ADD)}", ADD)


def chain_ref(op: tuple, s: str) -> str:
    kind = op[0]
    if kind in ("upper", "lower"):
        return _case_ref(kind, s)
    if kind == "reverse":
        return s[::-1]
    if kind == "replace":
        return _replace_ref(s, op[1], op[2])
    if kind == "remove":
        return _replace_ref(s, op[1], "")
    return s + op[1] if kind == "add_end" else op[1] + s


def _chain_gen(key, rng):
    letters = [o[1] for o in (key["op1"], key["op2"]) if o[0] in ("replace", "remove")]
    return (text_with(rng, letters[0] if letters else None, mixed=rng.random() < 0.4),)


family(name="str_chain2", names=["transform_text", "two_steps", "process_text", "rework", "chain_edit"],
       keys=lambda: [K(arg=s, op1=list(o1), op2=list(o2)) for s in ARGS_S for o1 in chain_ops() for o2 in chain_ops()
                     if o1[0] != o2[0]],
       doc=lambda key: f"Return {key['arg']} {chain_phrase(tuple(key['op1']))}, then {chain_phrase(tuple(key['op2']))}.",
       sig=str_sig("str"),
       body=lambda key: one_line(chain_expr(tuple(key["op2"]), chain_expr(tuple(key["op1"]), Expr(key["arg"], ATOM))).text),
       ref=lambda key, s: chain_ref(tuple(key["op2"]), chain_ref(tuple(key["op1"]), s)),
       gen=_chain_gen, comp=lambda key: (key["op1"][0], key["op2"][0]))

WORDS_DOC = {"count": "Return the number of words in {a}, where words are separated by spaces.",
             "reverse": "Return the words of {a} in reverse order, joined by single spaces.",
             "join": "Return the words of {a} joined by '{t}'.",
             "first": "Return the first word of {a}.", "last": "Return the last word of {a}.",
             "longer": "Return a list of the words of {a} that are longer than {k} characters.",
             "sorted": "Return a list of the words of {a} in alphabetical order."}
WORDS_CODE = {"count": "len({a}.split())", "reverse": "' '.join({a}.split()[::-1])", "join": "'{t}'.join({a}.split())",
              "first": "{a}.split()[0]", "last": "{a}.split()[-1]", "longer": "[w for w in {a}.split() if len(w) > {k}]",
              "sorted": "sorted({a}.split())"}
WORDS_RET = {"count": "int", "reverse": "str", "join": "str", "first": "str", "last": "str", "longer": "list[str]",
             "sorted": "list[str]"}


def _words_ref(key, s):
    ws, cur = [], ""
    for ch in s + " ":
        if ch == " ":
            if cur:
                ws.append(cur)
            cur = ""
        else:
            cur += ch
    op = key["op"]
    return {"count": lambda: len(ws), "reverse": lambda: " ".join(list(reversed(ws))),
            "join": lambda: key["t"].join(ws), "first": lambda: ws[0], "last": lambda: ws[-1],
            "longer": lambda: [w for w in ws if len(w) > key["k"]], "sorted": lambda: _insertion_sort(ws)}[op]()


family(name="str_words", names=["word_op", "split_words", "words_of", "handle_words", "word_tool"],
       keys=lambda: ([K(arg=s, op=o, t=None, k=None) for s in ARGS_S for o in ("count", "reverse", "first", "last", "sorted")] +
                     [K(arg=s, op="join", t=t, k=None) for s in ARGS_S for t in ["-", ",", "|", "_", "+", ", "]] +
                     [K(arg=s, op="longer", t=None, k=k) for s in ARGS_S for k in range(2, 7)]),
       doc=lambda key: WORDS_DOC[key["op"]].format(a=key["arg"], t=key["t"], k=key["k"]),
       sig=lambda key: ([(key["arg"], "str")], WORDS_RET[key["op"]]),
       body=lambda key: one_line(WORDS_CODE[key["op"]].format(a=key["arg"], t=key["t"], k=key["k"])),
       ref=_words_ref, gen=lambda key, rng: (rand_text(rng, rng.randint(1, 5)),), consts=("t", "k"))


def _pal_gen(key, rng):
    r = rng.random()
    if r < 0.4:
        s = rng.choice(PALINDROMES)
    elif r < 0.6:
        s = rng.choice(PALINDROMES).capitalize()
    else:
        s = rng.choice(WORDS)
    return (s,)


def _pal_ref(key, s):
    t = _case_ref("lower", s) if key["icase"] else s
    return all(t[i] == t[len(t) - 1 - i] for i in range(len(t)))


family(name="str_palindrome", names=["is_palindrome", "reads_same", "mirror_check", "symmetric_text", "palindrome"],
       keys=lambda: [K(arg=s, icase=i) for s in ARGS_S for i in (False, True)],
       doc=lambda key: (f"Return True if {key['arg']} reads the same forwards and backwards"
                        f"{' when case is ignored' if key['icase'] else ''}, else False."),
       sig=str_sig("bool"),
       body=lambda key: one_line(f"{key['arg']}.lower() == {key['arg']}.lower()[::-1]" if key["icase"] else
                                 f"{key['arg']} == {key['arg']}[::-1]"),
       ref=_pal_ref, gen=_pal_gen)

def _len_pred_gen(key, rng):
    # Half the time a length next to the threshold k, to tell > from >= and k from k + 1.
    k = key["k"]
    if isinstance(k, int) and k > 0 and rng.random() < 0.5:
        n = k + rng.choice([-1, 0, 1])
    else:
        n = rng.randint(0, 14)
    return ("".join(rng.choice("abcdefgh") for _ in range(n)),)


family(name="str_len_pred", names=["length_check", "long_enough", "size_test", "check_length", "len_rule"],
       keys=lambda: [K(arg=s, sel=o, k=k) for s in ARGS_S for o, k in sel_choices()],
       doc=lambda key: f"Return True if the length of {key['arg']} is {sel_phrase(key['sel'], key['k'])}, else False.",
       sig=str_sig("bool"),
       body=lambda key: one_line(sel_code(key["sel"], key["k"], f"len({key['arg']})")),
       ref=lambda key, s: sel_ref(key["sel"], key["k"], len(s)),
       gen=_len_pred_gen, consts=("k",))

# --- integers ---
def int_sig(ret: str) -> Callable[[dict], tuple]:
    return lambda k: ([(k["arg"], "int")], ret)


def _int_gen(lo=-20, hi=40):
    return lambda key, rng: ((key["k"] + rng.choice([-1, 0, 1])) if isinstance(key.get("k"), int) and rng.random() < 0.4
                             else rng.randint(lo, hi),)


family(name="int_pred", names=["check_number", "test_value", "is_match", "number_rule", "qualifies"],
       keys=lambda: [K(arg=a, sel=o, k=k) for a in INT_ARGS for o, k in sel_choices()],
       doc=lambda key: f"Return True if {key['arg']} is {sel_phrase(key['sel'], key['k'])}, else False.",
       sig=int_sig("bool"),
       body=lambda key: one_line(sel_code(key["sel"], key["k"], key["arg"])),
       ref=lambda key, n: sel_ref(key["sel"], key["k"], n),
       gen=_int_gen(-5, 30), consts=("k",))

family(name="arith_one", names=["compute", "apply_op", "calc", "transform_number", "evaluate"],
       keys=lambda: [K(arg=a, trans=t, m=m) for a in INT_ARGS for t, m in trans_choices()],
       doc=lambda key: f"Return {key['arg']} {trans_phrase(key['trans'], key['m'])}.",
       sig=int_sig("int"),
       body=lambda key: one_line(trans_expr(key["trans"], key["m"], Expr(key["arg"], ATOM)).text),
       ref=lambda key, n: trans_ref(key["trans"], key["m"], n),
       gen=_int_gen(-20, 40), consts=("m",))

family(name="arith_two", names=["compute_two_steps", "calc_chain", "two_ops", "combine_ops", "formula"],
       keys=lambda: [K(arg=a, t1=t1, m1=m1, t2=t2, m2=m2) for a in INT_ARGS for t1, m1 in trans_choices()
                     for t2, m2 in trans_choices() if not (t1 == t2 and t1 in ("sq", "neg"))],
       doc=lambda key: (f"Return {key['arg']} {trans_phrase(key['t1'], key['m1'])}, "
                        f"then {trans_phrase(key['t2'], key['m2'])}."),
       sig=int_sig("int"),
       body=lambda key: one_line(trans_expr(key["t2"], key["m2"], trans_expr(key["t1"], key["m1"], Expr(key["arg"], ATOM))).text),
       ref=lambda key, n: trans_ref(key["t2"], key["m2"], trans_ref(key["t1"], key["m1"], n)),
       gen=_int_gen(-20, 40), consts=("m1", "m2"), comp=lambda key: (key["t1"], key["t2"]))

DIGITS_DOC = {"sum": "Return the sum of the decimal digits of {a}, which is not negative.",
              "count": "Return the number of decimal digits of {a}, which is not negative.",
              "max": "Return the largest decimal digit of {a}, which is not negative.",
              "reverse": "Return the number whose decimal digits are those of {a} in reverse order; {a} is not negative.",
              "count_sel": "Return the number of decimal digits of {a} that are {p}; {a} is not negative."}
DIGITS_CODE = {"sum": "sum(int(c) for c in str({a}))", "count": "len(str({a}))", "max": "max(int(c) for c in str({a}))",
               "reverse": "int(str({a})[::-1])", "count_sel": "sum(1 for c in str({a}) if {cond})"}


def _digits(n):
    ds = []
    while True:
        ds.append(n % 10)
        n //= 10
        if n == 0:
            return ds[::-1]


def _digits_ref(key, n):
    ds = _digits(n)
    op = key["op"]
    if op == "sum":
        return _loop_sum(ds)
    if op == "count":
        return len(ds)
    if op == "max":
        return _extreme_ref("max", ds)
    if op == "reverse":
        r = 0
        for d in reversed(ds):
            r = r * 10 + d
        return r
    return len([d for d in ds if sel_ref(key["sel"], key["k"], d)])


family(name="digits", names=["digit_op", "digits_of", "number_digits", "digit_stat", "scan_digits"],
       keys=lambda: ([K(arg=a, op=o, sel=None, k=None) for a in INT_ARGS for o in ("sum", "count", "max", "reverse")] +
                     [K(arg=a, op="count_sel", sel=o, k=k) for a in INT_ARGS for o, k in sel_choices(9)]),
       doc=lambda key: DIGITS_DOC[key["op"]].format(a=key["arg"], p=sel_phrase(key["sel"], key["k"]) if key["sel"] else ""),
       sig=int_sig("int"),
       body=lambda key: one_line(DIGITS_CODE[key["op"]].format(
           a=key["arg"], cond=sel_code(key["sel"], key["k"], "int(c)") if key["sel"] else "")),
       ref=_digits_ref, gen=lambda key, rng: (rng.choice([rng.randint(0, 99), rng.randint(100, 99999)]),), consts=("k",))

BIN_DOC = {"max": "Return the larger of {a} and {b}.", "min": "Return the smaller of {a} and {b}.",
           "absdiff": "Return the absolute difference between {a} and {b}.", "sum": "Return the sum of {a} and {b}.",
           "mean": "Return the average of {a} and {b}, rounded down.",
           "lin": "Return {a} multiplied by {k}, plus {b}."}
BIN_CODE = {"max": "max({a}, {b})", "min": "min({a}, {b})", "absdiff": "abs({a} - {b})", "sum": "{a} + {b}",
            "mean": "({a} + {b}) // 2", "lin": "{a} * {k} + {b}"}
BIN_REF = {"max": lambda a, b, k: a if a >= b else b, "min": lambda a, b, k: a if a <= b else b,
           "absdiff": lambda a, b, k: a - b if a >= b else b - a, "sum": lambda a, b, k: a + b,
           "mean": lambda a, b, k: floor_div(a + b, 2), "lin": lambda a, b, k: a * k + b}
BINS = {p[0] + "," + p[1]: p for p in BIN_ARGS}

family(name="binary", names=["combine", "pair_op", "two_numbers", "merge_numbers", "both"],
       keys=lambda: ([K(arg=p, op=o, k=None) for p in BINS for o in BIN_DOC if o != "lin"] +
                     [K(arg=p, op="lin", k=k) for p in BINS for k in range(2, 10)]),
       doc=lambda key: BIN_DOC[key["op"]].format(a=BINS[key["arg"]][0], b=BINS[key["arg"]][1], k=key["k"]),
       sig=lambda key: ([(BINS[key["arg"]][0], "int"), (BINS[key["arg"]][1], "int")], "int"),
       body=lambda key: one_line(BIN_CODE[key["op"]].format(a=BINS[key["arg"]][0], b=BINS[key["arg"]][1], k=key["k"])),
       ref=lambda key, a, b: BIN_REF[key["op"]](a, b, key["k"]),
       gen=lambda key, rng: (rng.randint(-20, 40), rng.randint(-20, 40)), consts=("k",))

family(name="clamp", names=["clamp", "limit", "bound", "restrict", "fit_range"],
       keys=lambda: [K(arg=a, lo=lo, hi=hi) for a in INT_ARGS for lo in range(0, 6) for hi in range(lo + 3, 16)],
       doc=lambda key: (f"Return {key['arg']} limited to the range {key['lo']} to {key['hi']}: {key['lo']} if "
                        f"{key['arg']} is less than {key['lo']}, {key['hi']} if it is greater than {key['hi']}, "
                        f"else {key['arg']}."),
       sig=int_sig("int"),
       body=lambda key: one_line(f"max({key['lo']}, min({key['arg']}, {key['hi']}))"),
       ref=lambda key, n: key["lo"] if n < key["lo"] else (key["hi"] if n > key["hi"] else n),
       gen=lambda key, rng: (rng.randint(-5, 20),), consts=("lo", "hi"))

RANGE_DOC = {"sum_from": "Return the sum of the integers from {k} to {a} inclusive.",
             "sum_mult": "Return the sum of the positive multiples of {k} that are less than {a}.",
             "list_from": "Return a list of the integers from {k} to {a} inclusive.",
             "first_mult": "Return a list of the first {a} positive multiples of {k}.",
             "count_mult": "Return the number of positive multiples of {k} that are at most {a}; {a} is not negative."}
RANGE_CODE = {"sum_from": "sum(range({k}, {a} + 1))", "sum_mult": "sum(range({k}, {a}, {k}))",
              "list_from": "list(range({k}, {a} + 1))", "first_mult": "[{k} * i for i in range(1, {a} + 1)]",
              "count_mult": "{a} // {k}"}
RANGE_RET = {"sum_from": "int", "sum_mult": "int", "list_from": "list[int]", "first_mult": "list[int]", "count_mult": "int"}


def _range_ref(key, n):
    k, op = key["k"], key["op"]
    if op == "sum_from":
        return _loop_sum([i for i in [k + j for j in range(max(0, n - k + 1))]])
    if op == "sum_mult":
        return _loop_sum([i for i in range(1, max(n, 1)) if i % k == 0])
    if op == "list_from":
        out, i = [], k
        while i <= n:
            out.append(i)
            i += 1
        return out
    if op == "first_mult":
        return [k * (j + 1) for j in range(n)]
    return len([i for i in range(1, n + 1) if i % k == 0])


family(name="range_sum", names=["range_total", "sum_between", "integers_up_to", "multiples", "count_up"],
       keys=lambda: [K(arg=a, op=o, k=k) for a in INT_ARGS for o in RANGE_DOC
                     for k in (range(0, 10) if o in ("sum_from", "list_from") else range(2, 10))],
       doc=lambda key: RANGE_DOC[key["op"]].format(a=key["arg"], k=key["k"]),
       sig=lambda key: ([(key["arg"], "int")], RANGE_RET[key["op"]]),
       body=lambda key: one_line(RANGE_CODE[key["op"]].format(a=key["arg"], k=key["k"])),
       ref=_range_ref,
       gen=lambda key, rng: (rng.randint(0, 6) if key["op"] in ("first_mult", "list_from") and rng.random() < 0.5
                             else rng.randint(0, 25),),
       consts=("k",))

BRANCH_SELS = ([("div", k) for k in range(2, 7)] + [("gt", k) for k in (0, 5, 10)] + [("lt", k) for k in (0, 5)] +
               [("even", None), ("odd", None)])
BRANCH_WORDS = ["fizz", "buzz", "big", "small", "yes", "no"]


def _branch_body(key):
    a = key["arg"]
    return (f"    if {sel_code(key['s1'], key['k1'], a)}:\n        return '{key['w1']}'\n"
            f"    if {sel_code(key['s2'], key['k2'], a)}:\n        return '{key['w2']}'\n"
            f"    return str({a})\n")


def _branch_ref(key, n):
    if sel_ref(key["s1"], key["k1"], n):
        return key["w1"]
    if sel_ref(key["s2"], key["k2"], n):
        return key["w2"]
    return ("-" if n < 0 else "") + "".join("0123456789"[d] for d in _digits(abs(n)))


family(name="int_branch", names=["classify", "label_number", "fizz_rule", "name_number", "describe"],
       keys=lambda: [K(arg=a, s1=s1, k1=k1, w1=w1, s2=s2, k2=k2, w2=w2) for a in INT_ARGS
                     for (s1, k1), (s2, k2) in itertools.permutations(BRANCH_SELS, 2)
                     for w1, w2 in itertools.permutations(BRANCH_WORDS, 2)],
       doc=lambda key: (f"Return '{key['w1']}' if {key['arg']} is {sel_phrase(key['s1'], key['k1'])}, otherwise "
                        f"'{key['w2']}' if {key['arg']} is {sel_phrase(key['s2'], key['k2'])}, otherwise "
                        f"{key['arg']} as a string."),
       sig=int_sig("str"), body=_branch_body, ref=_branch_ref,
       gen=lambda key, rng: (rng.randint(-3, 30),), consts=("k1", "k2", "w1", "w2"),
       comp=lambda key: (key["s1"], key["s2"]))

# --- dicts ---
def dict_sig(ret: str) -> Callable[[dict], tuple]:
    return lambda k: ([(k["arg"], "dict[str, int]")], ret)


def _dict_get_gen(key, rng):
    d = rand_dict(rng)
    if rng.random() < 0.5:
        d[key["key"]] = rng.randint(0, 20)
    return (d,)


family(name="dict_get", names=["lookup", "get_value", "fetch", "value_or_default", "read_entry"],
       keys=lambda: [K(arg=a, key=k, default=dflt) for a in DICT_ARGS for k in DICT_KEYS for dflt in (-1, 0, 1, 5, 10, 100)],
       doc=lambda key: (f"Return the value of '{key['key']}' in {key['arg']}, or {key['default']} if "
                        f"'{key['key']}' is not a key of {key['arg']}."),
       sig=dict_sig("int"),
       body=lambda key: one_line(f"{key['arg']}.get('{key['key']}', {key['default']})"),
       ref=lambda key, d: d[key["key"]] if key["key"] in list(d.keys()) else key["default"],
       gen=_dict_get_gen, consts=("key", "default"))

DREDUCE_DOC = {"sum": "Return the sum of the values of {a}.", "max": "Return the largest value in {a}.",
               "min": "Return the smallest value in {a}.", "size": "Return the number of keys in {a}.",
               "argmax": "Return the key of {a} with the largest value.",
               "keys": "Return a list of the keys of {a} in alphabetical order."}
DREDUCE_CODE = {"sum": "sum({a}.values())", "max": "max({a}.values())", "min": "min({a}.values())", "size": "len({a})",
                "argmax": "max({a}, key={a}.get)", "keys": "sorted({a})"}
DREDUCE_RET = {"sum": "int", "max": "int", "min": "int", "size": "int", "argmax": "str", "keys": "list[str]"}


def _dreduce_ref(key, d):
    items = list(d.items())
    op = key["op"]
    if op == "sum":
        return _loop_sum([v for _, v in items])
    if op in ("max", "min"):
        return _extreme_ref(op, [v for _, v in items])
    if op == "size":
        return len(items)
    if op == "argmax":
        best = items[0]
        for kv in items:
            if kv[1] > best[1]:
                best = kv
        return best[0]
    return _insertion_sort([k for k, _ in items])


def _dreduce_gen(key, rng):
    d = rand_dict(rng, n_lo=1)
    if key["op"] == "argmax":  # a unique largest value, so the answer does not depend on tie-breaking
        vals = rng.sample(range(0, 30), len(d))
        d = dict(zip(d.keys(), vals))
    return (d,)


family(name="dict_reduce", names=["summarize", "dict_stat", "reduce_dict", "inspect_table", "table_summary"],
       keys=lambda: [K(arg=a, op=o) for a in DICT_ARGS for o in DREDUCE_DOC],
       doc=lambda key: DREDUCE_DOC[key["op"]].format(a=key["arg"]),
       sig=lambda key: ([(key["arg"], "dict[str, int]")], DREDUCE_RET[key["op"]]),
       body=lambda key: one_line(DREDUCE_CODE[key["op"]].format(a=key["arg"])),
       ref=_dreduce_ref, gen=_dreduce_gen)

family(name="dict_filter_keys", names=["keys_where", "select_keys", "matching_keys", "filter_keys", "keys_with"],
       keys=lambda: [K(arg=a, sel=o, k=k) for a in DICT_ARGS for o, k in sel_choices()],
       doc=lambda key: (f"Return a list of the keys of {key['arg']} whose value is {sel_phrase(key['sel'], key['k'])}, "
                        f"in alphabetical order."),
       sig=dict_sig("list[str]"),
       body=lambda key: one_line(f"sorted(key for key, value in {key['arg']}.items() if "
                                 f"{sel_code(key['sel'], key['k'], 'value')})"),
       ref=lambda key, d: _insertion_sort([k for k in d if sel_ref(key["sel"], key["k"], d[k])]),
       gen=lambda key, rng: (rand_dict(rng, near=key["k"]),), consts=("k",))

family(name="dict_count", names=["count_values", "values_matching", "tally_values", "count_entries", "how_many_values"],
       keys=lambda: [K(arg=a, sel=o, k=k) for a in DICT_ARGS for o, k in sel_choices()],
       doc=lambda key: f"Return the number of values in {key['arg']} that are {sel_phrase(key['sel'], key['k'])}.",
       sig=dict_sig("int"),
       body=lambda key: one_line(f"sum(1 for value in {key['arg']}.values() if {sel_code(key['sel'], key['k'], 'value')})"),
       ref=lambda key, d: len([k for k in d if sel_ref(key["sel"], key["k"], d[k])]),
       gen=lambda key, rng: (rand_dict(rng, near=key["k"]),), consts=("k",))

family(name="dict_map", names=["map_dict", "update_values", "transform_table", "adjust_dict", "rescale"],
       keys=lambda: [K(arg=a, trans=t, m=m) for a in DICT_ARGS for t, m in trans_choices()],
       doc=lambda key: f"Return a dict with the keys of {key['arg']}, each value {trans_phrase(key['trans'], key['m'])}.",
       sig=dict_sig("dict[str, int]"),
       body=lambda key: one_line("{key: " + trans_expr(key["trans"], key["m"], Expr("value", ATOM)).text +
                                 f" for key, value in {key['arg']}.items()" + "}"),
       ref=lambda key, d: dict([(k, trans_ref(key["trans"], key["m"], d[k])) for k in d]),
       gen=lambda key, rng: (rand_dict(rng, -5, 15),), consts=("m",))

# Test only: the values of a dict (dict_count, dict_map) under a sum of a selection (sum_filter).
family(name="dict_sum_filter", names=["sum_values_where", "total_of_matching", "sum_selected_values", "table_total"],
       keys=lambda: [K(arg=a, sel=o, k=k) for a in DICT_ARGS for o, k in sel_choices()],
       doc=lambda key: f"Return the sum of the values in {key['arg']} that are {sel_phrase(key['sel'], key['k'])}.",
       sig=dict_sig("int"),
       body=lambda key: one_line(f"sum(value for value in {key['arg']}.values() if "
                                 f"{sel_code(key['sel'], key['k'], 'value')})"),
       ref=lambda key, d: _loop_sum([d[k] for k in d if sel_ref(key["sel"], key["k"], d[k])]),
       gen=lambda key, rng: (rand_dict(rng, near=key["k"]),), consts=("k",), whole_heldout=True)


# ---- building tasks --------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """Whitespace-normalised text: runs of whitespace become one space, ends trimmed."""
    return " ".join(text.split())


def canon(key: dict) -> tuple:
    """A hashable identity of a key."""
    return tuple((f, tuple(v) if isinstance(v, list) else v) for f, v in sorted(key.items()))


def render_prompt(fam: Family, key: dict, fname: str, examples: list[tuple[tuple, Any]]) -> str:
    params, ret = fam.sig(key)
    lines = [f"def {fname}({', '.join(f'{p}: {t}' for p, t in params)}) -> {ret}:", f'    """{fam.doc(key)}']
    for args, out in examples:
        lines.append(f"    >>> {fname}({', '.join(repr(a) for a in args)})")
        lines.append(f"    {out!r}")
    lines.append('    """')
    return "\n".join(lines) + "\n"


def render_test(cases: list[tuple[tuple, Any]]) -> str:
    lines = ["", "", "def check(candidate):"]
    for args, out in cases:
        lines.append(f"    assert candidate({', '.join(repr(a) for a in args)}) == {out!r}")
    return "\n".join(lines) + "\n"


@dataclass
class KeyIndex:
    """The keys of one family, for drawing neighbouring keys (mutants) of a key."""
    valid: set          # canon(key) of every key
    domains: dict       # field -> the distinct values the field takes (arg excluded)


def key_index(keys: list[dict]) -> KeyIndex:
    domains: dict[str, dict[str, Any]] = {}
    for k in keys:
        for f, v in k.items():
            if f != "arg":
                domains.setdefault(f, {})[repr(v)] = v
    return KeyIndex({canon(k) for k in keys}, {f: [d[s] for s in sorted(d)] for f, d in sorted(domains.items())})


def mutants(key: dict, index: KeyIndex, rng: random.Random, per_field: int = 4) -> list[dict]:
    """Keys of the same family that differ from `key` in one field (or in one field and the constant
    that goes with it), same argument name: the near-miss tasks a test must tell apart."""
    out, seen = [], {canon(key)}
    for f, dom in index.domains.items():
        others = [v for v in dom if v != key[f]]
        for v in rng.sample(others, min(per_field, len(others))):
            cand = dict(key, **{f: v})
            if canon(cand) not in index.valid:
                cand = None
                for g, dom_g in index.domains.items():
                    if g == f:
                        continue
                    for w in rng.sample(dom_g, len(dom_g)):
                        trial = dict(key, **{f: v, g: w})
                        if canon(trial) in index.valid:
                            cand = trial
                            break
                    if cand:
                        break
            if cand and canon(cand) not in seen:
                seen.add(canon(cand))
                out.append(cand)
    return out


POOL_INPUTS = 24  # random inputs drawn per task, from which the asserted ones are chosen


def make_cases(fam: Family, key: dict, rng: random.Random, index: KeyIndex) -> list[tuple[tuple, Any]]:
    """EXAMPLE_INPUTS distinct inputs with their expected outputs, chosen greedily from a random pool so
    that together they tell the task apart from every neighbouring key that the pool can tell apart
    (mutation analysis), then so that they show as many different outputs as possible."""
    pool, seen = [], set()
    for _ in range(10 * POOL_INPUTS):
        if len(pool) == POOL_INPUTS:
            break
        args = fam.gen(key, rng)
        if repr(args) not in seen:
            seen.add(repr(args))
            pool.append(args)
    if len(pool) < 3:
        raise RuntimeError(f"{fam.name}: could not draw 3 distinct inputs for {key}")

    # The references are pure functions (they never modify their arguments; checked below).
    frozen = [repr(a) for a in pool]

    def run(k: dict, args: tuple) -> Any:
        try:
            return repr(fam.ref(k, *args))
        except Exception as e:  # a neighbour undefined on this input (e.g. max of nothing) differs
            return "<error " + type(e).__name__ + ">"

    outs = [fam.ref(key, *a) for a in pool]
    if any(o is None for o in outs):
        raise RuntimeError(f"{fam.name}: reference returned None for {key}")
    out_repr = [repr(o) for o in outs]
    kills = []  # kills[i] = the set of mutants that input i tells apart from the key
    muts = mutants(key, index, rng)
    for i, a in enumerate(pool):
        kills.append({j for j, m in enumerate(muts) if run(m, a) != out_repr[i]})
    chosen: list[int] = []
    alive = set().union(*kills)
    shown: set = set()
    while len(chosen) < min(EXAMPLE_INPUTS, len(pool)):
        def score(i: int) -> tuple:
            return (len(kills[i] & alive), out_repr[i] not in shown)
        rest = [i for i in range(len(pool)) if i not in chosen]
        best = max(score(i) for i in rest)
        pick = [i for i in rest if score(i) == best][0]  # pool order is random already
        chosen.append(pick)
        alive -= kills[pick]
        shown.add(out_repr[pick])
    if [repr(a) for a in pool] != frozen:
        raise RuntimeError(f"{fam.name}: the reference modified its arguments")
    return [(pool[i], outs[i]) for i in chosen]


def make_task(fam: Family, key: dict, rng: random.Random, index: KeyIndex) -> dict:
    fname = rng.choice(fam.names)
    cases = make_cases(fam, key, rng, index)
    n_ex = rng.randint(1, 3)
    return {"prompt": render_prompt(fam, key, fname, cases[:n_ex]), "entry_point": fname,
            "canonical_solution": fam.body(key), "test": render_test(cases)}


@dataclass
class Pools:
    train: list[dict]
    seen: list[dict]
    const: list[dict]
    comp: list[dict]


def const_values(fam: Family, key: dict) -> list:
    return [key[f] for f in fam.consts if key.get(f) is not None]


INDEX: dict[str, KeyIndex] = {}


def split_keys(fam: Family, rng: random.Random) -> tuple[Pools, list, list]:
    keys = fam.keys()
    INDEX[fam.name] = key_index(keys)
    if fam.whole_heldout:
        return Pools([], [], [], keys), [], ["(whole family)"]
    # Held-out compositions: ~15% of the family's compositions, each of whose parts still occurs in
    # training at the same position.
    held_comps: set = set()
    if fam.comp:
        comps = sorted({tuple(fam.comp(k)) for k in keys})
        order = comps[:]
        rng.shuffle(order)
        want = max(1, round(0.15 * len(comps)))
        for c in order:
            if len(held_comps) >= want:
                break
            rest = [d for d in comps if d != c and d not in held_comps]
            if all(any(d[i] == c[i] for d in rest) for i in range(len(c))):
                held_comps.add(c)
    remaining = [k for k in keys if not (fam.comp and tuple(fam.comp(k)) in held_comps)]
    # Held-out constants: 1-2 constant values this family never uses in training.
    held_consts: list = []
    domain = sorted({repr(v) for k in remaining for v in const_values(fam, k)})
    if domain:
        n_hold = 1 if len(domain) <= 8 else 2
        for _ in range(50):
            cand = rng.sample(domain, n_hold)
            left = [k for k in remaining if not any(repr(v) in cand for v in const_values(fam, k))]
            if len(left) >= 0.5 * len(remaining):
                held_consts = cand
                break
    const_pool = [k for k in remaining if any(repr(v) in held_consts for v in const_values(fam, k))]
    seen_all = [k for k in remaining if not any(repr(v) in held_consts for v in const_values(fam, k))]
    order = list(range(len(seen_all)))
    rng.shuffle(order)
    n_seen_test = min(max(4, round(0.1 * len(seen_all))), len(seen_all) // 3)
    seen_test = [seen_all[i] for i in sorted(order[:n_seen_test])]
    train = [seen_all[i] for i in sorted(order[n_seen_test:])]
    comp_pool = [k for k in keys if fam.comp and tuple(fam.comp(k)) in held_comps]
    return Pools(train, seen_test, const_pool, comp_pool), held_consts, sorted(held_comps)


def build(seed: int, n_train: int, log) -> tuple[list[dict], list[dict], list[dict]]:
    fam_pools = {}
    for fam in FAMILIES:
        frng = random.Random(f"{seed}/split/{fam.name}")
        pools, hc, hcomp = split_keys(fam, frng)
        fam_pools[fam.name] = pools
        log(f"{fam.name:18s} keys train {len(pools.train):6d}  test-only: seen {len(pools.seen):4d} "
            f"const {len(pools.const):6d} comp {len(pools.comp):6d}  held constants {hc} compositions {len(hcomp)}")
    # Train tasks per family ~ sqrt(number of train keys), at least 25.
    weights = {f.name: math.sqrt(len(fam_pools[f.name].train)) for f in FAMILIES if fam_pools[f.name].train}
    total_w = sum(weights.values())
    train_rows: list[tuple[dict, Family, dict]] = []
    for fam in FAMILIES:
        if fam.name not in weights:
            continue
        frng = random.Random(f"{seed}/train/{fam.name}")
        pool = fam_pools[fam.name].train[:]
        frng.shuffle(pool)
        count = max(25, round(n_train * weights[fam.name] / total_w))
        for i in range(count):
            key = pool[i % len(pool)]
            train_rows.append((make_task(fam, key, frng, INDEX[fam.name]), fam, key))
    rng = random.Random(f"{seed}/order")
    rng.shuffle(train_rows)
    train_rows = train_rows[:n_train] if len(train_rows) > n_train else train_rows

    seen_prompts = {normalise(t["prompt"]) for t, _, _ in train_rows}
    seen_sols = {normalise(t["canonical_solution"]) for t, _, _ in train_rows}

    # Test tasks: per family 3 seen + 1 held-out constant (when the family has one) + 2 held-out
    # compositions (when it has them); a whole held-out family gives 4 compositions.
    test_rows: list[tuple[dict, Family, dict, str]] = []
    test_prompts, test_sols = set(), set()
    for fam in FAMILIES:
        frng = random.Random(f"{seed}/test/{fam.name}")
        pools = fam_pools[fam.name]
        plan = ["comp"] * 4 if fam.whole_heldout else (
            ["seen"] * 3 + (["const"] if pools.const else ["seen"]) + (["comp"] * 2 if pools.comp else []))
        avail = {c: getattr(pools, c)[:] for c in ("seen", "const", "comp")}
        for c in avail:
            frng.shuffle(avail[c])
        for cat in plan:
            for _ in range(100):
                if not avail[cat]:
                    raise RuntimeError(f"{fam.name}: no {cat} test key left")
                key = avail[cat].pop()
                task = make_task(fam, key, frng, INDEX[fam.name])
                p, s = normalise(task["prompt"]), normalise(task["canonical_solution"])
                if p in seen_prompts or s in seen_sols or p in test_prompts or s in test_sols:
                    continue  # collides with a training task (another family) or another test task
                test_prompts.add(p)
                test_sols.add(s)
                test_rows.append((task, fam, key, cat))
                break
            else:
                raise RuntimeError(f"{fam.name}: could not find a {cat} test task disjoint from training")
    rng.shuffle(test_rows)

    names = {"seen": "seen", "const": "heldout_constant", "comp": "heldout_composition"}
    train, test, meta = [], [], []
    for i, (t, fam, key) in enumerate(train_rows):
        tid = f"spikefm/train/{i}"
        train.append(ordered(tid, t))
        meta.append({"task_id": tid, "family": fam.name, "category": "train", "params": key})
    for i, (t, fam, key, cat) in enumerate(test_rows):
        tid = f"spikefm/test/{i}"
        test.append(ordered(tid, t))
        meta.append({"task_id": tid, "family": fam.name, "category": names[cat], "params": key})
    return train, test, meta


def ordered(tid: str, t: dict) -> dict:
    return {"task_id": tid, "prompt": t["prompt"], "entry_point": t["entry_point"],
            "canonical_solution": t["canonical_solution"], "test": t["test"]}


def assemble(task: dict, completion: str) -> str:
    """HumanEval's execution convention (the same as spikefm::assemble_program)."""
    return task["prompt"] + completion + "\n" + task["test"] + "\n" + "check(" + task["entry_point"] + ")\n"


RUNNER = r"""
import json, sys
progs = json.load(open(sys.argv[1]))
ok = []
for src in progs:
    g = {"__name__": "__main__"}
    try:
        exec(compile(src, "<task>", "exec"), g)
        ok.append(True)
    except BaseException:
        ok.append(False)
print(json.dumps(ok))
"""


def verify(tasks: list[dict], log) -> list[str]:
    """Runs each canonical solution (must pass) and '    return None' (must fail) in python3 -I
    subprocesses, each program in a fresh namespace. Returns the problems found."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="spikefm-gen-") as tmp:
        runner = os.path.join(tmp, "runner.py")
        with open(runner, "w") as f:
            f.write(RUNNER)
        for start in range(0, len(tasks), VERIFY_BATCH):
            batch = tasks[start:start + VERIFY_BATCH]
            progs = [assemble(t, t["canonical_solution"]) for t in batch] + [assemble(t, "    return None") for t in batch]
            path = os.path.join(tmp, "progs.json")
            with open(path, "w") as f:
                json.dump(progs, f)
            try:
                res = subprocess.run([sys.executable, "-I", runner, path], capture_output=True, text=True,
                                     timeout=VERIFY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                return problems + [f"verification of tasks {start}..{start + len(batch) - 1} timed out"]
            if res.returncode != 0:
                return problems + [f"verification runner failed: {res.stderr.strip()[-2000:]}"]
            ok = json.loads(res.stdout)
            for i, t in enumerate(batch):
                if not ok[i]:
                    problems.append(f"{t['task_id']}: the canonical solution fails its own check")
                if ok[len(batch) + i]:
                    problems.append(f"{t['task_id']}: 'return None' passes the check (the test tests nothing)")
        log(f"verified {len(tasks)} tasks: canonical solutions pass, 'return None' fails"
            if not problems else f"{len(problems)} verification problems")
    return problems


def split_problems(train: list[dict], test: list[dict]) -> list[str]:
    tp = {normalise(t["prompt"]) for t in train}
    ts = {normalise(t["canonical_solution"]) for t in train}
    out = []
    for t in test:
        if normalise(t["prompt"]) in tp:
            out.append(f"{t['task_id']}: prompt also in training")
        if normalise(t["canonical_solution"]) in ts:
            out.append(f"{t['task_id']}: canonical solution also in training")
    ids = [t["task_id"] for t in train + test]
    if len(set(ids)) != len(ids):
        out.append("duplicate task_id")
    return out


def write_jsonl_atomic(path: str, rows: list[dict]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(here, "..", "datasets", "data", "code"),
                    help="folder for code_train.jsonl, code_test.jsonl, code_meta.jsonl")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--train", type=int, default=DEFAULT_TRAIN_TASKS, help="number of training tasks")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))

    train, test, meta = build(args.seed, args.train, log)
    problems = split_problems(train, test) + verify(test + train, log)
    if problems:
        for p in problems[:50]:
            print("gen_code_tasks: " + p, file=sys.stderr)
        print(f"gen_code_tasks: {len(problems)} problems; nothing written", file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    write_jsonl_atomic(os.path.join(args.out_dir, "code_train.jsonl"), train)
    write_jsonl_atomic(os.path.join(args.out_dir, "code_test.jsonl"), test)
    write_jsonl_atomic(os.path.join(args.out_dir, "code_meta.jsonl"), meta)
    cats: dict[str, int] = {}
    for m in meta:
        cats[m["category"]] = cats.get(m["category"], 0) + 1
    log(f"wrote {len(train)} train and {len(test)} test tasks to {os.path.normpath(args.out_dir)}; "
        f"categories {dict(sorted(cats.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
