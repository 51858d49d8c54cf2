from payplane_operator.main import main

main()
