"""The computational-graph nodes of chapter 5: ``MulLayer`` and ``AddLayer``."""
from __future__ import annotations

from typing import Any


class MulLayer:
    """out = x * y (chapter 5's multiplication node).

    Attributes
    ----------
    x : Any
        The first input of the last ``forward``, kept for ``backward`` (None before it).
    y : Any
        The second input of the last ``forward``, kept for ``backward`` (None before it).
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Drop the saved inputs (backward then refuses until the next forward)."""
        self.x: Any = None
        self.y: Any = None

    def __repr__(self) -> str:
        return "MulLayer()"

    def forward(self, x: Any, y: Any) -> Any:
        """x * y, keeping x and y for ``backward``.

        Parameters
        ----------
        x : Any
            A number or array (the book's apple price).
        y : Any
            A number or array that multiplies ``x`` (the book's apple count).

        Returns
        -------
        Any
            ``x * y``.
        """
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        """The gradients of x and y: ``(dout * y, dout * x)``.

        Parameters
        ----------
        dout : Any
            The gradient of the output.

        Returns
        -------
        tuple
            ``(dx, dy)``.
        """
        return dout * self.y, dout * self.x


class AddLayer:
    """out = x + y (chapter 5's addition node).

    Attributes
    ----------
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self) -> None:
        pass

    def reset(self) -> None:
        """Nothing to drop: addition keeps no state."""

    def __repr__(self) -> str:
        return "AddLayer()"

    def forward(self, x: Any, y: Any) -> Any:
        """x + y; nothing is kept.

        Parameters
        ----------
        x : Any
            A number or array.
        y : Any
            A number or array added to ``x``.

        Returns
        -------
        Any
            ``x + y``.
        """
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        """The gradients of x and y: ``(dout, dout)`` (as ``dout * 1``, new objects).

        Parameters
        ----------
        dout : Any
            The gradient of the output.

        Returns
        -------
        tuple
            ``(dx, dy)``.
        """
        return dout * 1, dout * 1
