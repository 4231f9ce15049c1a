"""Chapter 5's shopping graphs, computed with fastdl's ``MulLayer`` and ``AddLayer`` as the book's
``buy_apple.py`` and ``buy_apple_orange.py`` do, with the number on every edge: the forward
value above, the derivative of the price below (``dout = 1`` at the price).

Each example is ``{"name", "title", "nodes", "edges"}``: a node ``{"id", "op", "layer", "col",
"row"}`` (its column and row in the drawing), an edge ``{"name", "from", "to", "forward",
"backward"}`` (``from`` None for an input, ``to`` None for the price).
"""
from __future__ import annotations

from typing import Any

from ..layers import AddLayer, MulLayer

EXAMPLES = ("apple", "apple-orange")


def _edge(name: str, src: str | None, dst: str | None, forward: float, backward: float) -> dict[str, Any]:
    return {"name": name, "from": src, "to": dst, "forward": float(forward), "backward": float(backward)}


def apple() -> dict[str, Any]:
    """2 apples at 100 yen each, consumption tax 1.1 (the book's Figure 5-16)."""
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)
    dprice = 1
    dapple_price, dtax = mul_tax_layer.backward(dprice)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    nodes = [{"id": "mul_apple_layer", "op": "×", "layer": "MulLayer", "col": 1, "row": 0.5},
             {"id": "mul_tax_layer", "op": "×", "layer": "MulLayer", "col": 2, "row": 1.25}]
    edges = [_edge("apple", None, "mul_apple_layer", apple, dapple),
             _edge("apple_num", None, "mul_apple_layer", apple_num, dapple_num),
             _edge("apple_price", "mul_apple_layer", "mul_tax_layer", apple_price, dapple_price),
             _edge("tax", None, "mul_tax_layer", tax, dtax),
             _edge("price", "mul_tax_layer", None, price, dprice)]
    inputs = {"apple": (0, 0), "apple_num": (0, 1), "tax": (0, 2)}
    return {"name": "apple", "title": "Buying apples (the book's buy_apple.py)", "nodes": nodes,
            "edges": edges, "inputs": inputs, "price": float(price)}


def apple_orange() -> dict[str, Any]:
    """2 apples at 100 yen, 3 oranges at 150 yen, tax 1.1 (the book's Figure 5-17)."""
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()
    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)
    dprice = 1
    dall_price, dtax = mul_tax_layer.backward(dprice)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    nodes = [{"id": "mul_apple_layer", "op": "×", "layer": "MulLayer", "col": 1, "row": 0.5},
             {"id": "mul_orange_layer", "op": "×", "layer": "MulLayer", "col": 1, "row": 2.5},
             {"id": "add_apple_orange_layer", "op": "+", "layer": "AddLayer", "col": 2, "row": 1.5},
             {"id": "mul_tax_layer", "op": "×", "layer": "MulLayer", "col": 3, "row": 2.75}]
    edges = [_edge("apple", None, "mul_apple_layer", apple, dapple),
             _edge("apple_num", None, "mul_apple_layer", apple_num, dapple_num),
             _edge("orange", None, "mul_orange_layer", orange, dorange),
             _edge("orange_num", None, "mul_orange_layer", orange_num, dorange_num),
             _edge("apple_price", "mul_apple_layer", "add_apple_orange_layer", apple_price, dapple_price),
             _edge("orange_price", "mul_orange_layer", "add_apple_orange_layer", orange_price, dorange_price),
             _edge("all_price", "add_apple_orange_layer", "mul_tax_layer", all_price, dall_price),
             _edge("tax", None, "mul_tax_layer", tax, dtax),
             _edge("price", "mul_tax_layer", None, price, dprice)]
    inputs = {"apple": (0, 0), "apple_num": (0, 1), "orange": (0, 2), "orange_num": (0, 3), "tax": (0, 4)}
    return {"name": "apple-orange", "title": "Buying apples and oranges (the book's buy_apple_orange.py)",
            "nodes": nodes, "edges": edges, "inputs": inputs, "price": float(price)}


def example(name: str) -> dict[str, Any]:
    """The example called ``name`` ("apple" or "apple-orange")."""
    key = str(name).strip().lower().replace("_", "-")
    if key == "apple":
        return apple()
    if key in ("apple-orange", "apple-and-orange"):
        return apple_orange()
    from ._collect import ExplainError
    raise ExplainError(f"fastdl.explain: no example called {name!r}; choose from {', '.join(EXAMPLES)}")
