"""Prefix classes of a workload: the tree of shared prompt prefixes (networkx) and the
partition of requests into classes (subtrees) that the LMetric hotspot detector watches.

**Tree.** Every request's prompt is a path of prompt units from the root (a trie; unit
``k`` is a child of unit ``k-1`` of the same prompt, so token-id prompts whose units
repeat at different positions are handled too). :func:`prefix_tree` returns it as a
:class:`networkx.DiGraph` with unary chains contracted (a radix tree): nodes are the root
(0), the branching points, and the nodes where some prompt ends. Node attributes:
``count`` (requests whose prompt passes through it), ``depth_units``, ``tokens``
(prefix length in tokens, the smallest over those requests), ``ends`` (requests whose
prompt ends exactly there), ``klass`` (class name, on class roots). Edge attribute
``units``: prompt units along the contracted chain.

**Class rule ("first divergence below the universal prefix").** The *universal prefix* is
the longest prefix shared by every request of the workload (Mooncake: the system-prompt
block 0; generated workloads: usually empty). A request's class is the subtree entered by
its first unit after the universal prefix. A class with one request, or whose members
share no unit beyond the universal prefix, has no cacheable sharing and is left out
(``class_of`` is None for its requests).

Why this rule: an instance that has served one member of a class holds at least the
class's first unit, so "holds the class's prefix" is well defined; all members gain from
that cache; and it is the coarsest partition with that property (merging two classes
would put requests with nothing in common beyond the universal prefix together; the
universal prefix itself is held by every instance after its first request, so it cannot
create a hotspot). On ``mooncake_conversation.jsonl`` it coincides with the loader's
client rule ``c<hash_ids[1]>`` (block 0 is universal; block 1 is the first divergence):
7,373 classes, 2,259 of them with >= 2 requests. Members of one class may still diverge
deeper (a conversation's turns, a document's questions): those are the class's subtree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

__all__ = ["PrefixClasses", "prefix_classes", "prefix_tree"]

RULE = ("class = subtree entered by the first prompt unit after the universal prefix (the prefix "
        "shared by every request); classes with one request or no shared unit are left out")


def _trie(workload):
    """Plain trie over prompt units: (children, count, tokens, depth, parent, end_node)."""
    children: list[dict[int, int]] = [{}]
    count = [0]
    tokens = [0]
    depth = [0]
    parent = [-1]
    end_node = np.zeros(len(workload), dtype=np.int64)
    for rid, r in enumerate(workload.requests):
        node = 0
        count[0] += 1
        for k, u in enumerate(r.prompt):
            ch = children[node].get(u)
            tk = r.tokens_in(k + 1)
            if ch is None:
                ch = len(children)
                children[node][u] = ch
                children.append({})
                count.append(0)
                tokens.append(tk)
                depth.append(k + 1)
                parent.append(node)
            elif tk < tokens[ch]:
                tokens[ch] = tk
            count[ch] += 1
            node = ch
        end_node[rid] = node
    return children, count, tokens, depth, parent, end_node


@dataclass
class PrefixClasses:
    """Prefix classes of a workload (see the module docstring for the rule).

    Attributes:
        tree: the contracted prefix tree (:class:`networkx.DiGraph`, root node 0).
        class_of: class name per request (index = rid), None for requests without a class.
        classes: class name -> ``{"root": tree node, "n_requests", "shared_tokens" (prefix
            tokens every member shares, universal prefix included), "mean_input",
            "mean_output", "clients" (most common client ids)}``.
        base_tokens: tokens of the universal prefix (a cache hit of at most this many
            tokens does not mean an instance holds any class).
        rule: the class rule in words.
    """

    tree: nx.DiGraph
    class_of: list[str | None]
    classes: dict[str, dict]
    base_tokens: int = 0
    rule: str = RULE
    n_requests: int = 0
    meta: dict = field(default_factory=dict)

    def subtree(self, name: str) -> nx.DiGraph:
        """The class's subtree of :attr:`tree` (its root and every descendant)."""
        root = self.classes[name]["root"]
        return self.tree.subgraph({root} | nx.descendants(self.tree, root)).copy()

    def frame(self) -> pd.DataFrame:
        """One row per class: name, n_requests, share, shared_tokens, mean_input, mean_output,
        clients; sorted by n_requests (largest first)."""
        rows = [{"klass": k, "n_requests": v["n_requests"], "share": v["n_requests"] / max(1, self.n_requests),
                 "shared_tokens": v["shared_tokens"], "mean_input": v["mean_input"],
                 "mean_output": v["mean_output"], "clients": ", ".join(v["clients"])}
                for k, v in self.classes.items()]
        cols = ["klass", "n_requests", "share", "shared_tokens", "mean_input", "mean_output", "clients"]
        df = pd.DataFrame(rows, columns=cols)
        return df.sort_values(["n_requests", "klass"], ascending=[False, True], ignore_index=True)

    def summary(self) -> dict:
        """Counts for reports: classes, requests in classes, largest class."""
        sizes = [v["n_requests"] for v in self.classes.values()]
        return {"rule": self.rule, "base_tokens": self.base_tokens, "n_classes": len(sizes),
                "requests_in_classes": int(sum(sizes)), "n_requests": self.n_requests,
                "largest_class": max(sizes) if sizes else 0,
                "tree_nodes": self.tree.number_of_nodes()}


def prefix_tree(workload) -> nx.DiGraph:
    """The contracted prefix tree of ``workload`` (see the module docstring)."""
    return prefix_classes(workload).tree


def prefix_classes(workload) -> PrefixClasses:
    """Build the prefix tree and the classes of ``workload`` (rule in the module docstring)."""
    n = len(workload)
    children, count, tokens, depth, parent, end_node = _trie(workload)
    # universal prefix: follow the chain of nodes every request passes through
    base = 0
    while len(children[base]) == 1:
        (ch,) = children[base].values()
        if count[ch] != n or np.any(end_node == base):
            break
        base = ch
    base_tokens = tokens[base] if base else 0
    ends = Counter(end_node.tolist())
    # contracted tree: keep root, base, class roots, branching nodes, end nodes
    keep_class_root = set(children[base].values())
    G = nx.DiGraph()

    def keep(v: int) -> bool:
        return v == 0 or v == base or v in keep_class_root or len(children[v]) != 1 or v in ends

    G.add_node(0, count=count[0], depth_units=0, tokens=0, ends=ends.get(0, 0))
    stack = [(0, 0)]  # (trie node, kept ancestor)
    while stack:
        v, anc = stack.pop()
        for ch in children[v].values():
            if keep(ch):
                G.add_node(ch, count=count[ch], depth_units=depth[ch], tokens=tokens[ch], ends=ends.get(ch, 0))
                G.add_edge(anc, ch, units=depth[ch] - depth[anc])
                stack.append((ch, ch))
            else:
                stack.append((ch, anc))
    # classes
    node_of_class: dict[int, str] = {}
    used: Counter = Counter()
    class_of: list[str | None] = [None] * n
    member_rids: dict[int, list[int]] = {}
    # class root of every trie node below the universal prefix (parents precede children)
    croot = np.full(len(children), -1, dtype=np.int64)
    for v in range(1, len(children)):
        p = parent[v]
        croot[v] = v if p == base else croot[p]
    for rid in range(n):
        root = int(croot[end_node[rid]])
        if root >= 0:
            member_rids.setdefault(root, []).append(rid)
    classes: dict[str, dict] = {}
    for root, rids in sorted(member_rids.items(), key=lambda kv: kv[1][0]):
        if len(rids) < 2:
            continue
        # shared prefix of all members: follow single children with the full count
        v = root
        while len(children[v]) == 1:
            (ch,) = children[v].values()
            if count[ch] != count[root]:
                break
            v = ch
        cl = Counter(workload.requests[r].client for r in rids)
        top = [c for c, _ in cl.most_common(3)]
        name = top[0] if len(cl) == 1 else f"{top[0]}+{len(cl) - 1}"
        used[name] += 1
        if used[name] > 1:
            name = f"{name}#{used[name]}"
        node_of_class[root] = name
        reqs = [workload.requests[r] for r in rids]
        classes[name] = {"root": root, "n_requests": len(rids), "shared_tokens": int(tokens[v]),
                         "mean_input": float(np.mean([r.input_len for r in reqs])),
                         "mean_output": float(np.mean([r.output_len for r in reqs])), "clients": top}
        for r in rids:
            class_of[r] = name
    for root, name in node_of_class.items():
        G.nodes[root]["klass"] = name
    return PrefixClasses(G, class_of, classes, int(base_tokens), RULE, n,
                         {"trie_nodes": len(children), "base_node": base})
