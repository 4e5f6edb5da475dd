"""doctor: name the cause and the fix of a broken stack.

``diagnose`` runs the checks (runtime, platform, kernels, memory_check, stack) on a machine
snapshot; ``explain`` maps error text to the same findings. Both are pure.
"""
