print("hello from a downstream image on lkl-nabla-python3-base")
