"""Output-size helpers shared by every backend. Plain Python integers only."""


def conv_output_size(input_size, filter_size, stride=1, pad=0):
    """Number of window positions along one axis: ``(input + 2*pad - filter) // stride + 1``.

    Returns an ``int`` (the book's version returns a float). Raises ``ValueError``
    when the filter does not fit in the padded input or the sizes are invalid.
    """
    for name, v in (("input_size", input_size), ("filter_size", filter_size),
                    ("stride", stride), ("pad", pad)):
        if isinstance(v, bool) or not isinstance(v, int) and not hasattr(v, "__index__"):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    input_size, filter_size, stride, pad = (int(v) for v in (input_size, filter_size, stride, pad))
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if filter_size < 1:
        raise ValueError(f"filter size must be >= 1, got {filter_size}")
    if filter_size > input_size + 2 * pad:
        raise ValueError(
            f"window of size {filter_size} is larger than the padded input "
            f"({input_size} + 2*{pad} = {input_size + 2 * pad})")
    return (input_size + 2 * pad - filter_size) // stride + 1


def window_output_hw(H, W, filter_h, filter_w, stride, pad):
    """(OH, OW) for a filter_h x filter_w window sliding over an H x W input."""
    return (conv_output_size(H, filter_h, stride, pad),
            conv_output_size(W, filter_w, stride, pad))
