# coding: utf-8
# A script in the book's import style (written for fastdl's tests; not the book's code).
import sys, os
sys.path.append(os.pardir)
import numpy as np
import common.layers
from common.functions import *
from common.optimizer import *
from common.util import im2col
from common.trainer import Trainer
from common.multi_layer_net import MultiLayerNet
from dataset.mnist import load_mnist
from demo_net import DemoNet

import fastdl

print("name", __name__)
print("argv", sys.argv[1:])
print("np", np.__name__, "softmax", softmax(np.array([0.3, 2.9, 4.0])).round(8).tolist())
print("shim", common.layers.Convolution is fastdl.layers.Convolution, Adam is fastdl.optimizers.Adam)
print("backend", fastdl.current_backend())

(x_train, t_train), (x_test, t_test) = load_mnist(normalize=True, one_hot_label=True)
print("data", x_train.shape, t_train.shape, x_test.shape)
np.random.seed(0)
net = DemoNet(input_size=784, hidden_size=50, output_size=10)
optimizer = Adam()
for i in range(200):
    batch_mask = np.random.choice(x_train.shape[0], 100)
    grads = net.gradient(x_train[batch_mask], t_train[batch_mask])
    optimizer.update(net.params, grads)
print("accuracy", net.accuracy(x_test, t_test))
