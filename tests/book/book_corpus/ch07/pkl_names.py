# Parameters saved and loaded under the book's .pkl names.
import sys, os
sys.path.append(os.pardir)
import numpy as np
from common.multi_layer_net import MultiLayerNet

np.random.seed(4)
net = MultiLayerNet(input_size=12, hidden_size_list=[5], output_size=3)
net.save_params(sys.argv[1])
other = MultiLayerNet(input_size=12, hidden_size_list=[5], output_size=3)
other.load_params(sys.argv[1])
print("same:" + str(all(np.array_equal(net.params[k], other.params[k]) for k in net.params)))
