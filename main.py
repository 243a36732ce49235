import os
print("visible", os.environ["CUDA_VISIBLE_DEVICES"], "num", os.environ["KHD_GPU_NUM"])
