"""breast_cancer's loader for submits: feed_infer(output_file, infer_func).

The platform calls it inside the submit session after the checkpoint is loaded: infer_func gets
the test folder and returns one label per case, in the order of test_data.csv.
"""
import os

from nsml.constants import DATASET_PATH


def feed_infer(output_file, infer_func):
    test_path = os.path.join(DATASET_PATH, "test")
    predictions = infer_func(test_path)
    with open(output_file, "w") as f:
        f.writelines("%d\n" % int(p) for p in predictions)
