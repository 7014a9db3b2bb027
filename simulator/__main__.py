from simulator.cli import sim_ollama

sim_ollama()
