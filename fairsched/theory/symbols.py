"""Named sympy symbols shared by every result in :mod:`fairsched.theory`.

Units: tokens for token counts, *service units* for ``W = w_p * prefill + w_q * decode``
(both weights in service units per token), seconds for times, requests for batch sizes,
requests/s for rates. All symbols are positive unless stated otherwise.
"""

from __future__ import annotations

import sympy as sp

# --- service model (VTC / DLPM / D2LPM) -------------------------------------------------
w_p, w_q = sp.symbols("w_p w_q", positive=True)  # service units per prefill / decode token
L_in = sp.Symbol("L_in", positive=True)  # longest (uncached) prompt charged, tokens
# M as VTC (Sheng et al., OSDI'24, Sec. 4) defines it: the most tokens that fit in a running
# batch = the instance's KV-cache token capacity (``InstanceConfig.kv_capacity_tokens``).
M_kv = sp.Symbol("M", positive=True)  # KV token capacity of one instance's running batch, tokens
O_max = sp.Symbol("O_max", positive=True)  # longest output of the workload, tokens
n_run = sp.Symbol("N_run", positive=True, integer=True)  # most requests running at once, one instance
U = sp.Symbol("U", positive=True)  # max(w_p L_in, w_q M), service units (M = KV capacity)
k_conc = sp.Symbol("k", positive=True, integer=True)  # max concurrent requests of one client
X = sp.Symbol("X", positive=True)  # max (prefill charge + outstanding decode) after an admission
Q_u = sp.Symbol("Q^u", positive=True)  # DLPM per-client quantum, service units
Q_w = sp.Symbol("Q^w", positive=True)  # D2LPM per-(client, worker) quantum, service units
K_workers = sp.Symbol("K", positive=True, integer=True)  # number of workers (D2LPM)
n_clients = sp.Symbol("n", positive=True, integer=True)
rate_a = sp.Symbol("a_svc", positive=True)  # service rate (units/s) for the latency bound
# w_q x outstanding decode tokens, at the moment f becomes backlogged, of f's running requests
# and of the running requests of clients that are not backlogged then (service units)
D_tau = sp.Symbol("D_tau", nonnegative=True)

# --- LMetric ----------------------------------------------------------------------------
x = sp.Symbol("x", positive=True)  # arrival fraction of the hot prefix class c
xbar = sp.Symbol("xbar", positive=True)  # 1 - x
n_hot = sp.Symbol("|M|", positive=True)  # instances that hold c's prefix
n_cold = sp.Symbol("|Mbar|", positive=True)  # instances that do not
N_inst = sp.Symbol("N", positive=True)  # |M| + |Mbar|
QPS = sp.Symbol("QPS", positive=True)  # total arrival rate, requests/s
B0 = sp.Symbol("B_0", positive=True)  # initial (balanced) batch size, requests
t = sp.Symbol("t", nonnegative=True)  # time, s
kappa = sp.Symbol("kappa", positive=True)  # score diversion point L_c / u_c
L_c = sp.Symbol("L_c", positive=True)  # class-c full prompt, tokens
u_c = sp.Symbol("u_c", positive=True)  # class-c uncached tokens on an M instance, tokens
lam = sp.Symbol("lambda", positive=True)  # linear-score weight in (0, 1)
alpha, beta = sp.symbols("alpha beta", positive=True)  # indicator scale factors a, b
P1, P2, B1, B2 = sp.symbols("P_1 P_2 B_1 B_2", positive=True)
O_out = sp.Symbol("O", positive=True)  # output tokens of the routed request

# --- cost model -------------------------------------------------------------------------
n_new = sp.Symbol("n", positive=True)  # new (uncached) prefill tokens
h_cached = sp.Symbol("h", nonnegative=True)  # cached context tokens
c_a, c_b, c_c = sp.symbols("a b c", nonnegative=True)  # prefill: s, s/token, s/token^2
d_a, d_b, d_c = sp.symbols("a_d b_d c_d", nonnegative=True)  # decode: s, s/seq, s/ctx-token
batch = sp.Symbol("B", positive=True)  # sequences in the decode batch
ctx = sp.Symbol("C", nonnegative=True)  # total context tokens in the decode batch
q_def = sp.Symbol("q", real=True)  # a client's deficit (service units)
