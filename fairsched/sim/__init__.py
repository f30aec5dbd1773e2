"""Discrete-event continuous-batching cluster simulator."""

from fairsched.sim.cost import CostModel
from fairsched.sim.result import SimResult
from fairsched.sim.simulator import InstanceConfig, Simulator, UnfinishedError, simulate

__all__ = ["CostModel", "InstanceConfig", "SimResult", "Simulator", "UnfinishedError", "simulate"]
