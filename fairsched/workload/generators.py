"""Seeded synthetic workloads: the request patterns DLPM was evaluated on, and mixes.

Every generator takes a ``seed`` (int >= 0) and uses ``numpy.random.default_rng``, so the
same arguments give the same :class:`~fairsched.workload.request.Workload` (``name`` says
what it is, ``meta`` holds the generator and its parameters). Defaults: ``block_size=16``
tokens per prompt unit; arrivals in seconds from 0.

**Lengths** (``*_tokens``, ``input_len``, ``output_len``) are given as an int (fixed) or as
an inclusive range ``(lo, hi)`` drawn uniformly per item.

**Prompt units.** A prompt is built from *segments*: pieces of content such as a
document, a question or an answer, each with a fresh id and a length in tokens. The
prompt's token sequence is cut into ``block_size`` blocks and every block gets a
prefix-chained unit id: the id of block ``k`` is a function of block ``k-1``'s id and the
exact content (segment pieces) of block ``k``. So two prompts share their first ``k``
units exactly when they share their first ``k * block_size`` tokens, a partial last block
never matches a full one, and unrelated content never shares an id. All ids (segments and
units) come from one counter per generator call (:class:`_Minter`); in :func:`mixed` the
components share one minter, so their ids never collide either.

**Arrivals.** Poisson processes (exponential gaps, ``rate`` in requests/s). Dependent
requests (the next chat turn, a child thought) follow their predecessor by a gap
``mean * (0.5 + Exp(0.5))`` (at least ``mean/2``, mean ``mean``). Traces are open-loop:
a follow-up's arrival does not wait for its predecessor's completion in a simulation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from ._rows import (
    Length,
    Row,
    _block_size,
    _build,
    _int,
    _length,
    _Minter,
    _pos,
    _rows_chat,
    _rows_doc_qa,
    _rows_judge,
    _rows_tot,
    _rows_unique,
    _seed,
)
from .load import offered_load
from .request import Workload

__all__ = [
    "GENERATORS",
    "default_workload",
    "llm_as_judge",
    "long_document_qa",
    "mixed",
    "multi_turn_chat",
    "offered_load",
    "synthetic_unique",
    "tree_of_thought",
]


# --------------------------------------------------------------------------- public


def long_document_qa(n_clients: int = 4, questions_per_client: int = 50,
                     doc_tokens: Length = (2000, 4000), question_tokens: Length = (30, 120),
                     output_tokens: Length = (16, 256), rate: float = 1.0, seed: int = 0, *,
                     block_size: int = 16) -> Workload:
    """Long-document QA (LooGLE-like): each client asks many questions about its own document.

    Client ``doc{i}`` has one document of ``doc_tokens`` tokens (drawn once per client);
    each of its ``questions_per_client`` requests is that document followed by a fresh
    question of ``question_tokens`` tokens, asking for ``output_tokens`` tokens. Arrivals
    of each client are Poisson at ``rate`` requests/s. All requests of a client share the
    document's full blocks; different clients share nothing.

    Raises:
        ValueError: a bad argument (the message names it).
    """
    args = dict(n_clients=_int("n_clients", n_clients),
                questions_per_client=_int("questions_per_client", questions_per_client),
                doc_tokens=_length("doc_tokens", doc_tokens),
                question_tokens=_length("question_tokens", question_tokens),
                output_tokens=_length("output_tokens", output_tokens),
                rate=_pos("rate", rate), seed=_seed(seed), block_size=_block_size(block_size))
    m = _Minter(args["block_size"])
    rows = _rows_doc_qa(np.random.default_rng(seed), m, [f"doc{i}" for i in range(n_clients)],
                        args["questions_per_client"], args["doc_tokens"],
                        args["question_tokens"], args["output_tokens"], args["rate"])
    return _build(rows, generator="long_document_qa", block_size=args["block_size"], params=args,
                  name=f"long_document_qa-{n_clients}x{questions_per_client}-seed{seed}")


def multi_turn_chat(n_clients: int = 4, turns: int = 5, conversations_per_client: int = 2,
                    user_tokens: Length = (20, 300), output_tokens: Length = (50, 400),
                    think_time: float = 15.0, seed: int = 0, *, block_size: int = 16) -> Workload:
    """Multi-turn chat (Chatbot-Arena-like): prompts grow with the conversation history.

    Client ``chat{i}`` is one user holding ``conversations_per_client`` conversations one
    after the other, each of ``turns`` turns. Turn ``k``'s prompt is every earlier turn's
    user message and answer (the answer has that turn's ``output_len`` tokens) followed
    by a new user message of ``user_tokens`` tokens. The user starts at ``U(0,
    think_time)`` s; each next turn (and the next conversation's first turn) arrives a
    gap of mean ``think_time`` s (at least half of it) after the previous turn's arrival,
    so a client's requests arrive in order. Requests per client: ``conversations *
    turns``.

    Raises:
        ValueError: a bad argument (the message names it).
    """
    args = dict(n_clients=_int("n_clients", n_clients), turns=_int("turns", turns),
                conversations_per_client=_int("conversations_per_client",
                                              conversations_per_client),
                user_tokens=_length("user_tokens", user_tokens),
                output_tokens=_length("output_tokens", output_tokens),
                think_time=_pos("think_time", think_time), seed=_seed(seed),
                block_size=_block_size(block_size))
    m = _Minter(args["block_size"])
    rows = _rows_chat(np.random.default_rng(seed), m, [f"chat{i}" for i in range(n_clients)],
                      args["conversations_per_client"], args["turns"], args["user_tokens"],
                      args["output_tokens"], args["think_time"])
    return _build(rows, generator="multi_turn_chat", block_size=args["block_size"], params=args,
                  name=f"multi_turn_chat-{n_clients}x{conversations_per_client}x{turns}-seed{seed}")


def tree_of_thought(n_clients: int = 2, depth: int = 3, branching: int = 3,
                    trees_per_client: int = 4, prefix_tokens: Length = (600, 1000),
                    question_tokens: Length = (60, 200), thought_tokens: Length = (30, 120),
                    output_tokens: Length = (30, 150), rate: float = 0.1, step_time: float = 2.0,
                    seed: int = 0, *, block_size: int = 16) -> Workload:
    """Tree-of-Thought (GSM8K-like): each problem is a tree of requests.

    Client ``tot{i}`` has a few-shot prefix of ``prefix_tokens`` tokens (drawn once per
    client, shared by all its trees; 0 for none) and solves ``trees_per_client`` problems
    whose roots arrive Poisson at ``rate`` trees/s. The root prompt is prefix + question
    (``question_tokens``); a node at level ``d < depth`` has ``branching`` children, each
    child's prompt = its parent's prompt + a new thought of ``thought_tokens`` tokens, and
    each child arrives a gap of mean ``step_time`` s (at least half of it) after its
    parent. ``depth`` counts levels, root included, so a tree has
    ``sum(branching**d for d in range(depth))`` requests.

    Raises:
        ValueError: a bad argument (the message names it).
    """
    args = dict(n_clients=_int("n_clients", n_clients), depth=_int("depth", depth),
                branching=_int("branching", branching),
                trees_per_client=_int("trees_per_client", trees_per_client),
                prefix_tokens=_length("prefix_tokens", prefix_tokens, lo=0),
                question_tokens=_length("question_tokens", question_tokens),
                thought_tokens=_length("thought_tokens", thought_tokens),
                output_tokens=_length("output_tokens", output_tokens),
                rate=_pos("rate", rate), step_time=_pos("step_time", step_time),
                seed=_seed(seed), block_size=_block_size(block_size))
    m = _Minter(args["block_size"])
    rows = _rows_tot(np.random.default_rng(seed), m, [f"tot{i}" for i in range(n_clients)],
                     args["trees_per_client"], args["depth"], args["branching"],
                     args["prefix_tokens"], args["question_tokens"], args["thought_tokens"],
                     args["output_tokens"], args["rate"], args["step_time"])
    return _build(rows, generator="tree_of_thought", block_size=args["block_size"], params=args,
                  name=f"tree_of_thought-{n_clients}x{trees_per_client}-d{depth}b{branching}-seed{seed}")


def llm_as_judge(n_clients: int = 2, requests_per_client: int = 50,
                 rubric_tokens: Length = (1000, 2000), answer_tokens: Length = (100, 600),
                 output_tokens: Length = (8, 64), rate: float = 1.0, seed: int = 0, *,
                 shared_rubric: bool = False, block_size: int = 16) -> Workload:
    """LLM-as-judge: many requests = one long rubric + a unique answer to grade.

    By default each judge client ``judge{i}`` has its own rubric of ``rubric_tokens``
    tokens (the common case: one evaluation task per client); ``shared_rubric=True`` gives
    all clients one rubric, so sharing crosses clients. Each request appends a fresh answer
    of ``answer_tokens`` tokens and asks for a short verdict of ``output_tokens`` tokens.
    Arrivals per client: Poisson at ``rate`` requests/s, ``requests_per_client`` of them.

    Raises:
        ValueError: a bad argument (the message names it).
    """
    if not isinstance(shared_rubric, bool):
        raise ValueError(f"shared_rubric must be a bool (got {shared_rubric!r})")
    args = dict(n_clients=_int("n_clients", n_clients),
                requests_per_client=_int("requests_per_client", requests_per_client),
                rubric_tokens=_length("rubric_tokens", rubric_tokens),
                answer_tokens=_length("answer_tokens", answer_tokens),
                output_tokens=_length("output_tokens", output_tokens),
                rate=_pos("rate", rate), seed=_seed(seed), shared_rubric=shared_rubric,
                block_size=_block_size(block_size))
    m = _Minter(args["block_size"])
    rows = _rows_judge(np.random.default_rng(seed), m, [f"judge{i}" for i in range(n_clients)],
                       args["requests_per_client"], args["rubric_tokens"],
                       args["answer_tokens"], args["output_tokens"], args["rate"], shared_rubric)
    return _build(rows, generator="llm_as_judge", block_size=args["block_size"], params=args,
                  name=f"llm_as_judge-{n_clients}x{requests_per_client}-seed{seed}")


def synthetic_unique(n_clients: int = 4, rates: float | Sequence[float] = 1.0,
                     input_len: Length = (100, 1000), output_len: Length = (50, 300),
                     seed: int = 0, *, duration: float = 60.0, block_size: int = 16) -> Workload:
    """Clients with no prefix sharing at all: every prompt is fresh content.

    Client ``user{i}`` sends Poisson arrivals at ``rates[i]`` requests/s (one number: the
    same rate for all) during ``[0, duration)`` s; lengths ``input_len`` / ``output_len``
    tokens. No two requests share a prompt unit.

    Raises:
        ValueError: a bad argument (the message names it), e.g. ``rates`` of the wrong length.
    """
    n = _int("n_clients", n_clients)
    if isinstance(rates, numbers.Real) and not isinstance(rates, bool):
        rate_list = [_pos("rates", rates)] * n
    elif isinstance(rates, Sequence) and not isinstance(rates, str) and len(rates) == n:
        rate_list = [_pos(f"rates[{i}]", r) for i, r in enumerate(rates)]
    else:
        raise ValueError(f"rates must be a number > 0 or a sequence of n_clients={n} numbers "
                         f"(got {rates!r})")
    args = dict(n_clients=n, rates=rate_list, input_len=_length("input_len", input_len),
                output_len=_length("output_len", output_len), seed=_seed(seed),
                duration=_pos("duration", duration), block_size=_block_size(block_size))
    m = _Minter(args["block_size"])
    rows = _rows_unique(np.random.default_rng(seed), m, [f"user{i}" for i in range(n)],
                        rate_list, args["input_len"], args["output_len"], args["duration"])
    return _build(rows, generator="synthetic_unique", block_size=args["block_size"], params=args,
                  name=f"synthetic_unique-{n}c-seed{seed}")


def mixed(seed: int = 0, scale: float = 1.0, duration: float = 90.0, *,
          block_size: int = 16) -> Workload:
    """A mix of clients with very different prefix sharing and rates (the fairness stress case).

    Clients (rates are multiplied by ``scale``; arrivals are cut at ``duration`` s):

    - ``doc0``: heavy long-document QA, one 2500-3500-token document, 5.5 questions/s
      (questions 40-120 tokens, outputs 32-256): high sharing, high rate.
    - ``doc1``: light long-document QA, its own 1500-2500-token document, 0.6/s.
    - ``chat0..2``: multi-turn chat users, 6 turns a conversation, user messages 20-300
      tokens, answers 50-512 tokens, think time 4.5 s / ``scale``.
    - ``judge0``: LLM-as-judge, own 1200-1800-token rubric, answers 200-800 tokens,
      verdicts 8-64 tokens, 1.6/s.
    - ``tot0``: Tree-of-Thought, 800-token few-shot prefix, depth 3, branching 3 (13
      requests a tree), 0.15 trees/s, 2 s between levels.
    - ``user0..3``: unique prompts (no sharing), 200-2500 tokens in, 64-512 out, rates
      1.2, 0.9, 0.6, 0.3 /s.

    Each component draws from its own child of ``SeedSequence(seed)``, so changing one
    component does not reshuffle the others; all share one id minter. ``meta["load"]``
    holds the offered work (see :func:`offered_load`).

    Raises:
        ValueError: a bad argument (the message names it).
    """
    seed = _seed(seed)
    scale = _pos("scale", scale)
    duration = _pos("duration", duration)
    bs = _block_size(block_size)
    m = _Minter(bs)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]

    def count(rate: float) -> int:  # enough Poisson arrivals to pass the horizon
        return int(rate * scale * duration * 1.5) + 10

    rows: list[Row] = []
    rows += _rows_doc_qa(rngs[0], m, ["doc0"], count(5.5), (2500, 3500), (40, 120), (32, 256),
                         5.5 * scale, horizon=duration)
    rows += _rows_doc_qa(rngs[1], m, ["doc1"], count(0.6), (1500, 2500), (40, 120), (16, 128),
                         0.6 * scale, horizon=duration)
    rows += _rows_chat(rngs[2], m, ["chat0", "chat1", "chat2"],
                       conversations=math.ceil(duration * scale / (6 * 4.5 * 0.5)) + 1, turns=6,
                       user=(20, 300), output=(50, 512), think_time=4.5 / scale,
                       horizon=duration)
    rows += _rows_judge(rngs[3], m, ["judge0"], count(1.6), (1200, 1800), (200, 800), (8, 64),
                        1.6 * scale, shared=False, horizon=duration)
    rows += _rows_tot(rngs[4], m, ["tot0"], count(0.15), 3, 3, (800, 800), (60, 200), (30, 120),
                      (30, 150), 0.15 * scale, 2.0, horizon=duration)
    rows += _rows_unique(rngs[5], m, [f"user{i}" for i in range(4)],
                         [r * scale for r in (1.2, 0.9, 0.6, 0.3)], (200, 2500), (64, 512),
                         duration)
    w = _build(rows, generator="mixed", block_size=bs,
               params={"seed": seed, "scale": scale, "duration": duration, "block_size": bs},
               name=f"mixed-scale{scale:g}-seed{seed}")
    w.meta["load"] = offered_load(w)
    return w


def default_workload(seed: int = 0) -> Workload:
    """The built-in default workload: ``mixed(seed, scale=1.0, duration=90.0)``.

    About 1,170-1,210 requests (seeds 0-3) over ~90 s from 13 clients (see :func:`mixed`);
    prompts up to ~3,600 tokens, outputs up to 512. Offered work under the simulator's
    default cost model (Llama-3.1-8B on one A100, decode steps of 32 requests), seed 0:
    about 4.7x the span without a prefix cache and 2.0x with a perfect one. In
    ``fairsched.sim.simulate`` (one instance, default config and cost model, as of
    writing) every policy keeps the instance busy to ~115 s, requests queue for 3-5 s on
    average (up to ~25 s), and the policies differ visibly: LPM serves the heavy ``doc0``
    client (~43% of requests) in 0.3 s while the unique-prompt users wait ~9 s; VTC and
    DLPM push the wait onto ``doc0``.
    ``meta["load"]`` holds these numbers; ``mixed(seed, scale=...)`` rescales the rates.
    """
    w = mixed(seed=seed)
    w.name = f"default-seed{w.meta['seed']}"
    w.meta["generator"] = "default_workload"
    return w


GENERATORS: dict[str, Callable[..., Workload]] = {
    "long_document_qa": long_document_qa,
    "multi_turn_chat": multi_turn_chat,
    "tree_of_thought": tree_of_thought,
    "llm_as_judge": llm_as_judge,
    "synthetic_unique": synthetic_unique,
    "mixed": mixed,
    "default": default_workload,
}
"""Generator name -> function (all take ``seed`` and return a :class:`Workload`)."""
