/*
 * opcodes.h - the one list of VM instructions, expanded wherever opcodes
 * are needed (enum, disassembler names, verifier operand kinds, dispatch
 * table). Never keep a parallel table by hand.
 *
 * An instruction is one 64-bit little-endian word:
 *
 *   63        48 47        32 31        16 15      8 7       0
 *   +-----------+-----------+-----------+---------+---------+
 *   |     C     |     B     |     A     |    0    |   op    |
 *   +-----------+-----------+-----------+---------+---------+
 *
 * Operand kinds, one letter per operand A, B, C (checked by the verifier):
 *   _  unused (must be 0)         w  register written (never an input)
 *   r  register read              m  register read and written (accumulator)
 *   i  iterator register          k  constant index
 *   s  string constant index      x  regex constant (a string constant)
 *   j  forward jump: pc+1+C       l  backward loop: pc-C, an ITERNEXT
 *   f  call-site index            u  rule index
 *   o  obligation index           n  element count (list/map)
 *   e  extern index (its arity gives the argument count)
 *
 * Opcodes added later go at the end, so that the numbers of the older ones
 * (and the .clb files using them) stay valid.
 *
 * Jumps only go forward, so every block runs to its end; the one backward
 * edge, LOOP, returns to an ITERNEXT that advances a finite iterator which
 * nothing inside the loop may reset (see verify.c).
 */
#ifndef CLAUSE_OPCODES_H
#define CLAUSE_OPCODES_H

#include <stdint.h>

/* OPCODE(name, operand kinds A B C, register-notation comment) */
#define CLAUSE_OPCODES(OPCODE)                                                         \
  OPCODE(NOP,      "___", "")                                                         \
  OPCODE(MOVE,     "wr_", "R[A] := R[B]")                                             \
  OPCODE(LOADK,    "wk_", "R[A] := K[B]")                                             \
  OPCODE(ERROR,    "ws_", "R[A] := an error with message K[B]")                       \
  OPCODE(NOT,      "wr_", "R[A] := !R[B]")                                            \
  OPCODE(NEG,      "wr_", "R[A] := -R[B]")                                            \
  OPCODE(ADD,      "wrr", "R[A] := R[B] + R[C]")                                      \
  OPCODE(SUB,      "wrr", "R[A] := R[B] - R[C]")                                      \
  OPCODE(MUL,      "wrr", "R[A] := R[B] * R[C]")                                      \
  OPCODE(DIV,      "wrr", "R[A] := R[B] / R[C]")                                      \
  OPCODE(MOD,      "wrr", "R[A] := R[B] % R[C]")                                      \
  OPCODE(EQ,       "wrr", "R[A] := R[B] == R[C]")                                     \
  OPCODE(NE,       "wrr", "R[A] := R[B] != R[C]")                                     \
  OPCODE(LT,       "wrr", "R[A] := R[B] < R[C]")                                      \
  OPCODE(LE,       "wrr", "R[A] := R[B] <= R[C]")                                     \
  OPCODE(GT,       "wrr", "R[A] := R[B] > R[C]")                                      \
  OPCODE(GE,       "wrr", "R[A] := R[B] >= R[C]")                                     \
  OPCODE(IN,       "wrr", "R[A] := R[B] in R[C]")                                     \
  OPCODE(INDEX,    "wrr", "R[A] := R[B][R[C]]")                                       \
  OPCODE(EQK,      "wrk", "R[A] := R[B] == K[C]")                                     \
  OPCODE(NEK,      "wrk", "R[A] := R[B] != K[C]")                                     \
  OPCODE(LTK,      "wrk", "R[A] := R[B] < K[C]")                                      \
  OPCODE(LEK,      "wrk", "R[A] := R[B] <= K[C]")                                     \
  OPCODE(GTK,      "wrk", "R[A] := R[B] > K[C]")                                      \
  OPCODE(GEK,      "wrk", "R[A] := R[B] >= K[C]")                                     \
  OPCODE(INK,      "wrk", "R[A] := R[B] in K[C]")                                     \
  OPCODE(SELECT,   "wrs", "R[A] := R[B].K[C]")                                        \
  OPCODE(HASKEY,   "wrs", "R[A] := has(R[B].K[C])")                                   \
  OPCODE(HAS,      "wr_", "R[A] := input field R[B] is present")                      \
  OPCODE(MATCHK,   "wrx", "R[A] := R[B].matches(K[C]), K[C] compiled at load")        \
  OPCODE(CALL,     "wrf", "R[A] := F[C](R[B], R[B+1], ...)")                          \
  OPCODE(LIST,     "wrn", "R[A] := [R[B], ..., R[B+C-1]]")                            \
  OPCODE(MAP,      "wrn", "R[A] := {R[B]: R[B+1], ...} (C pairs)")                    \
  OPCODE(ANDSC,    "wrj", "if R[B] is false: R[A] := false; pc += C")                 \
  OPCODE(AND,      "wrr", "R[A] := R[B] && R[C], errors absorbed by false")           \
  OPCODE(ORSC,     "wrj", "if R[B] is true: R[A] := true; pc += C")                   \
  OPCODE(OR,       "wrr", "R[A] := R[B] || R[C], errors absorbed by true")            \
  OPCODE(TESTBOOL, "wrj", "if R[B] is not a bool: R[A] := error; pc += C")            \
  OPCODE(JFALSE,   "r_j", "if R[A] is false: pc += C")                                \
  OPCODE(JMP,      "__j", "pc += C")                                                  \
  OPCODE(LETCHK,   "r_j", "if let R[A] is computed: pc += C")                         \
  OPCODE(ITER,     "irj", "R[A] := iterator over R[B]; not iterable: R[A] := error; pc += C") \
  OPCODE(ITERNEXT, "wij", "R[A] := next of R[B]; exhausted: pc += C")                 \
  OPCODE(LOOP,     "__l", "pc -= C (back to an ITERNEXT)")                            \
  OPCODE(ITERERR,  "wi_", "R[A] := the error held by iterator R[B]")                  \
  OPCODE(ALLSTEP,  "mrj", "all(): R[B] false: R[A] := false, pc += C; error kept")    \
  OPCODE(ANYSTEP,  "mrj", "exists(): R[B] true: R[A] := true, pc += C; error kept")   \
  OPCODE(ONESTEP,  "mrj", "exists_one(): count R[B] true in R[A]; error: pc += C")    \
  OPCODE(ONEEND,   "wr_", "R[A] := R[B] == 1 (R[B] a count or an error)")             \
  OPCODE(FILTER,   "mrj", "R[B] false: pc += C; error: R[A] := error, pc += C")       \
  OPCODE(APPEND,   "mr_", "R[A] := R[A] + [R[B]] (an error R[A] or R[B] sticks)")     \
  OPCODE(CJFALSE,  "r_j", "conjunct R[A]: false: pc += C; error: kept as pending")   \
  OPCODE(CJABSENT, "r_j", "conjunct has(R[A]): field absent: pc += C")               \
  OPCODE(CJEQK,    "rkj", "conjunct R[A] == K[B]: false: pc += C; error: pending")    \
  OPCODE(CJNEK,    "rkj", "conjunct R[A] != K[B]: false: pc += C; error: pending")    \
  OPCODE(CJINK,    "rkj", "conjunct R[A] in K[B]: false: pc += C; error: pending")    \
  OPCODE(RCOND,    "_uj", "rule B: a pending conjunct error fails it: pc += C")       \
  OPCODE(RWHEN,    "ruj", "rule B: R[A] not true: pc += C (error: rule fails)")       \
  OPCODE(RUNLESS,  "ruj", "rule B: R[A] not false: pc += C (error: rule fails)")      \
  OPCODE(RRETRY,   "ruj", "rule B: retry_after := R[A] (a duration > 0, else fails)") \
  OPCODE(RSUSPEND, "ruj", "rule B: suspend R[A] for R[A+1] (else fails)")             \
  OPCODE(RMATCH,   "_u_", "rule B matches")                                           \
  OPCODE(OBLIG,    "ro_", "obligation B with arguments R[A], R[A+1], ...")            \
  OPCODE(OBLIGK,   "_os", "obligation B with constant arguments, as JSON text K[C]")  \
  OPCODE(HALT,     "___", "end of the rules: decide")                                 \
  OPCODE(RET,      "r__", "end of a value block: the value is R[A]")                  \
  OPCODE(INDEXK,   "wkr", "R[A] := K[B][R[C]]")                                       \
  OPCODE(CJNOT,    "r_j", "conjunct !R[A]: false: pc += C; error: pending")           \
  OPCODE(CJNINK,   "rkj", "conjunct !(R[A] in K[B]): false: pc += C; error: pending") \
  OPCODE(CJLTK,    "rkj", "conjunct R[A] < K[B]: false: pc += C; error: pending")     \
  OPCODE(CJLEK,    "rkj", "conjunct R[A] <= K[B]: false: pc += C; error: pending")    \
  OPCODE(CJGTK,    "rkj", "conjunct R[A] > K[B]: false: pc += C; error: pending")     \
  OPCODE(CJGEK,    "rkj", "conjunct R[A] >= K[B]: false: pc += C; error: pending")    \
  OPCODE(CJEQ,     "rrj", "conjunct R[A] == R[B]: false: pc += C; error: pending")    \
  OPCODE(CJNE,     "rrj", "conjunct R[A] != R[B]: false: pc += C; error: pending")    \
  OPCODE(CJLT,     "rrj", "conjunct R[A] < R[B]: false: pc += C; error: pending")     \
  OPCODE(CJLE,     "rrj", "conjunct R[A] <= R[B]: false: pc += C; error: pending")    \
  OPCODE(CJGT,     "rrj", "conjunct R[A] > R[B]: false: pc += C; error: pending")     \
  OPCODE(CJGE,     "rrj", "conjunct R[A] >= R[B]: false: pc += C; error: pending")    \
  OPCODE(CJIN,     "rrj", "conjunct R[A] in R[B]: false: pc += C; error: pending")    \
  OPCODE(STARTS,   "wrr", "R[A] := R[B].startsWith(R[C])")                          \
  OPCODE(XCALL,    "wre", "R[A] := extern X[C](R[B], R[B+1], ...)")               \
  OPCODE(STATE,    "___", "counters and suspensions from the state store (once)") \
  OPCODE(ANYINK,   "wrk", "R[A] := R[B].exists(x, x in K[C])")                      \
  OPCODE(STARTSANY, "wrk", "R[A] := K[C].exists(p, R[B].startsWith(p))")            \
  OPCODE(HASOR,    "wrr", "R[A] := input field R[B] is present ? R[B] : R[C]")        \
  OPCODE(CJINKIDX, "rkj", "load-time only: CJINK, then the INDEXK R[X] := K[B][R[A]] after it, in one lookup") \
  OPCODE(CJHASINK, "rkj", "load-time only: CJABSENT R[A] and the CJINK R[A], K[B] after it, in one")

typedef enum opcode {
#define OPCODE_ENUM(name, kinds, doc) BC_##name,
  CLAUSE_OPCODES(OPCODE_ENUM)
#undef OPCODE_ENUM
  BC__COUNT
} opcode;

typedef uint64_t instr;

#define INSTR_OP(i) ((unsigned)((i) & 0xffu))
#define INSTR_A(i) ((unsigned)(((i) >> 16) & 0xffffu))
#define INSTR_B(i) ((unsigned)(((i) >> 32) & 0xffffu))
#define INSTR_C(i) ((unsigned)(((i) >> 48) & 0xffffu))
#define INSTR_MAKE(op, a, b, c)                                                  \
  ((instr)(op) | ((instr)(a) << 16) | ((instr)(b) << 32) | ((instr)(c) << 48))
#define INSTR_MAX_OPERAND 0xffffu

/* Names and operand kinds, indexed by opcode (vm/program.c). */
extern const char *const opcode_names[BC__COUNT];
extern const char *const opcode_kinds[BC__COUNT];
extern const char *const opcode_docs[BC__COUNT];

#endif
