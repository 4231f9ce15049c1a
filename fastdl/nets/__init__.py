"""The book's networks, with an extra ``dtype=`` keyword (float64 by default, as in the book)."""
from .base import Net, Summary, SummaryRow, read_extra, read_meta
from .mlp import MultiLayerNet, MultiLayerNetExtend, TwoLayerNet
from .conv import DeepConvNet, SimpleConvNet
from .rebuild import load_model

__all__ = ["Net", "Summary", "SummaryRow", "read_meta", "read_extra", "load_model", "TwoLayerNet", "MultiLayerNet", "MultiLayerNetExtend", "SimpleConvNet", "DeepConvNet"]
