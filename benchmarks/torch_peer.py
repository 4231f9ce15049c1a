"""PyTorch CPU peer for benchmarks/step_time.py: the book's networks, same shapes, same step
(forward, backward, Adam). Run in its own process; prints JSON with the median step time."""
import argparse
import json
import time

import numpy as np
import torch
from torch import nn


def simple():
    return nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                         nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10))


def deep():
    def block(ci, co, p1, p2, c_mid):
        return [nn.Conv2d(ci, c_mid, 3, padding=p1), nn.ReLU(), nn.Conv2d(c_mid, co, 3, padding=p2),
                nn.ReLU(), nn.MaxPool2d(2, 2)]
    return nn.Sequential(*block(1, 16, 1, 1, 16), *block(16, 32, 1, 2, 32), *block(32, 64, 1, 1, 64),
                         nn.Flatten(), nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(50, 10), nn.Dropout(0.5))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--net", default="simple")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dt = getattr(torch, a.dtype)
    torch.manual_seed(0)
    model = {"simple": simple, "deep": deep}[a.net]().to(dt)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    x = torch.rand(a.batch, 1, 28, 28, dtype=dt)
    t = torch.randint(0, 10, (a.batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), t).backward()
        opt.step()
    for _ in range(3):
        step()
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"median_ms": float(np.median(times)) * 1e3, "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
