# Optimizers on the book's f(x, y) = x**2 / 20 + y**2, parameters held as floats and as arrays.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from common.optimizer import SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam

for name, opt in (("SGD", SGD(lr=0.95)), ("Momentum", Momentum(lr=0.1)), ("Nesterov", Nesterov(lr=0.1)),
                  ("AdaGrad", AdaGrad(lr=1.5)), ("RMSprop", RMSprop(lr=0.1)), ("Adam", Adam(lr=0.3))):
    params = {"x": -7.0, "y": 2.0}
    arrays = {"xy": np.array([-7.0, 2.0])}
    opt2 = type(opt)(**{k: v for k, v in vars(opt).items() if k in ("lr", "momentum", "decay_rate", "beta1", "beta2")})
    for i in range(30):
        grads = {"x": params["x"] / 10.0, "y": 2.0 * params["y"]}
        opt.update(params, grads)
        g = arrays["xy"] * np.array([1 / 10.0, 2.0])
        opt2.update(arrays, {"xy": g})
    print(name + ": " + repr(params["x"]) + " " + repr(params["y"]) + " " +
          repr(float(arrays["xy"][0])) + " " + repr(float(arrays["xy"][1])))
