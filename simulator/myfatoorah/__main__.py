from simulator.myfatoorah.cli import sim_myfatoorah

sim_myfatoorah()
