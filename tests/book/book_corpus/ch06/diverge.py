# A network without batch normalisation and with far too large initial weights
# diverges: the loss becomes NaN, and training goes on (as the book's Figure 6-19
# experiment needs) instead of stopping with an error.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from dataset.mnist import load_mnist
from common.multi_layer_net_extend import MultiLayerNetExtend
from common.optimizer import SGD

(x_train, t_train), _ = load_mnist(normalize=True)
x_train, t_train = x_train[:300], t_train[:300]
np.random.seed(0)
for use_bn in (False, True):
    net = MultiLayerNetExtend(input_size=784, hidden_size_list=[60] * 5, output_size=10,
                              weight_init_std=8.0, use_batchnorm=use_bn)
    opt = SGD(lr=0.01)
    for i in range(20):
        mask = np.random.choice(300, 100)
        grads = net.gradient(x_train[mask], t_train[mask])
        opt.update(net.params, grads)
    print("batchnorm:" + str(use_bn) + " loss:" + str(net.loss(x_train[:100], t_train[:100])) +
          " acc:" + str(net.accuracy(x_train, t_train)))
