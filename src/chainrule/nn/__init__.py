"""chainrule.nn: neurons, layers, networks, costs and backpropagation (text Parts II-IV)."""

from .activations import ACTIVATIONS, Activation, get_activation
from .costs import COSTS, Cost, get_cost
from .init import INITIALIZERS, get_initializer
from .network import Dense, Gradients, Network

__all__ = ["Network", "Dense", "Gradients", "Activation", "Cost", "ACTIVATIONS", "COSTS",
           "INITIALIZERS", "get_activation", "get_cost", "get_initializer"]
