package dev.bdserve.parallel.mpi;

/** A failed MPI call: the message names the MPI function and carries {@code MPI_Error_string}'s text. */
public final class MpiException extends RuntimeException {
    public MpiException(String message) {
        super(message);
    }
}
