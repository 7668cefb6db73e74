// cosim_common.vh: declarations shared by the co-simulation harnesses, included inside each
// harness module (the co-simulation driver inlines it, so that the build hash covers it).
//
// Needs the including module to declare `finished` and `failed` (output regs) and the
// parameter ID. Provides the result file, the checks and their codes, the cycle counter, the
// watchdog and the pseudo-random ready pattern.

// What a mismatch line's CODE refers to (docs/cosim.md; sim/golden_drive.py names them).
localparam [7:0] CODE_Y = 8'd1;           // pre-activation y of a neuron
localparam [7:0] CODE_A = 8'd2;           // activation a = f(y)
localparam [7:0] CODE_DERIVATIVE = 8'd3;  // stored f'
localparam [7:0] CODE_DELTA = 8'd4;       // delta
localparam [7:0] CODE_LFSR = 8'd5;        // LFSR state
localparam [7:0] CODE_WEIGHT = 8'd6;      // a weight after the sample's update
localparam [7:0] CODE_ROUTED = 8'd7;      // an error word delivered by the router
localparam [7:0] CODE_COUNTER = 8'd8;     // a counter or a word count at the end of the run
localparam [7:0] CODE_TIMEOUT = 8'd9;     // no progress for +watchdog clocks
localparam [7:0] CODE_EXTRA = 8'd10;      // a word the DUT should not have produced
localparam [7:0] CODE_FILE = 8'd11;       // a stimulus or expected-value file is missing or short
localparam [7:0] CODE_FEEDBACK = 8'd12;   // a feedback constant read back after loading

// Host-port spaces (rtl/signatures.py, Space).
localparam [2:0] SPACE_WEIGHT = 3'd0;
localparam [2:0] SPACE_FEEDBACK = 3'd1;
localparam [2:0] SPACE_LFSR = 3'd2;
localparam [2:0] SPACE_DELTA = 3'd3;
localparam [2:0] SPACE_DERIVATIVE = 3'd4;

localparam MAX_LOGGED = 32;

reg [8*1024-1:0] common_dir;
reg [8*1024-1:0] common_path;
integer fd_load, fd_ya, fd_rb, fd_res;
integer common_rc;
integer common_watchdog_limit;
reg [7:0] common_stall;      // from the load file's header
reg [31:0] common_seed;
reg [31:0] checks, mismatches, cycles, idle_clocks;
reg [31:0] common_rng;

function [63:0] mask(input integer width);
    mask = (width >= 64) ? {64{1'b1}} : ((64'd1 << width) - 64'd1);
endfunction

function [7:0] space_code(input [2:0] space);
    case (space)
        SPACE_WEIGHT: space_code = CODE_WEIGHT;
        SPACE_LFSR: space_code = CODE_LFSR;
        SPACE_DELTA: space_code = CODE_DELTA;
        SPACE_FEEDBACK: space_code = CODE_FEEDBACK;
        default: space_code = CODE_DERIVATIVE;
    endcase
endfunction

task common_open_one(output integer fd, input [8*8-1:0] name, input integer mode_write);
    begin
        $sformat(common_path, "%0s/h%0d_%0s%0s", common_dir, ID, name,
                 mode_write != 0 ? ".txt" : ".hex");
        fd = (mode_write != 0) ? $fopen(common_path, "w") : $fopen(common_path, "r");
    end
endtask

// Open the files every harness has: load, ya (or route), rb, and the result file.
task common_open(input integer id, input [8*8-1:0] kind);
    begin
        checks = 0;
        mismatches = 0;
        cycles = 0;
        idle_clocks = 0;
        if (!$value$plusargs("cosim_dir=%s", common_dir)) common_dir = ".";
        common_stall = 8'd0;
        common_seed = 32'd1;
        common_rng = 32'd1;
        if (!$value$plusargs("watchdog=%d", common_watchdog_limit)) common_watchdog_limit = 100000;
        common_open_one(fd_res, "result", 1);
        common_open_one(fd_load, "load", 0);
        common_open_one(fd_ya, "ya", 0);
        common_open_one(fd_rb, "rb", 0);
        if (fd_res != 0) $fdisplay(fd_res, "harness %0s %0d", kind, id);
    end
endtask

// Take the stall level and seed of the load file's header.
task common_set_stall(input [63:0] level, input [63:0] seed);
    begin
        common_stall = level[7:0];
        common_seed = seed[31:0];
        common_rng = 32'h2545F491 ^ common_seed;
        if (common_rng == 32'd0) common_rng = 32'd1;
    end
endtask

task common_clock;
    begin
        cycles = cycles + 1;
        idle_clocks = idle_clocks + 1;
        if (common_stall != 8'd0) begin
            common_rng = common_rng ^ (common_rng << 13);
            common_rng = common_rng ^ (common_rng >> 17);
            common_rng = common_rng ^ (common_rng << 5);
        end
    end
endtask

// A ready that is low with probability stall/256, different for each `lane`.
function common_random_ready(input integer lane);
    reg [31:0] mixed;
    begin
        if (common_stall == 8'd0) begin
            common_random_ready = 1'b1;  // the common case, kept cheap for simulation speed
        end else begin
            mixed = common_rng ^ (lane * 32'h9E3779B1);
            mixed = mixed ^ (mixed >> 15);
            mixed = mixed * 32'h2C1B3C6D;
            mixed = mixed ^ (mixed >> 12);
            common_random_ready = mixed[7:0] >= common_stall;
        end
    end
endfunction

task common_progress;
    idle_clocks = 0;
endtask

task common_log(input [7:0] code, input [31:0] pass_, input [31:0] sample, input [31:0] index,
                input [63:0] expected, input [63:0] actual);
    begin
        mismatches = mismatches + 1;
        if (mismatches <= MAX_LOGGED && fd_res != 0)
            $fdisplay(fd_res, "mismatch %0d %0d %0d %0d %h %h", code, pass_, sample, index, expected, actual);
    end
endtask

task common_check(input [7:0] code, input [31:0] pass_, input [31:0] sample, input [31:0] index,
                  input [63:0] expected, input [63:0] actual);
    begin
        checks = checks + 1;
        if (expected !== actual) common_log(code, pass_, sample, index, expected, actual);
    end
endtask

task common_finish(input [31:0] samples, input [31:0] run_start, input [31:0] run_end);
    begin
        if (fd_res != 0) begin
            $fdisplay(fd_res, "summary %0d %0d %0d %0d %0d %0d", checks, mismatches, cycles,
                      run_start, run_end, samples);
            $fclose(fd_res);
            fd_res = 0;
        end
        failed = (mismatches != 0);
        finished = 1'b1;
    end
endtask

// A file ended early or is missing: log it and end the run (its checks cannot continue).
task common_fail_file(input [8*48-1:0] what);
    begin
        common_log(CODE_FILE, 0, 0, 0, 64'd0, 64'd0);
        if (fd_res != 0) $fdisplay(fd_res, "file %0s", what);
        common_finish(0, 0, 0);
    end
endtask

// Read the next one, two or four words of a file into a..d; ok = 0 (and the run ends) when
// the file is shorter than the harness expects.
task common_read1(input integer fd, input [8*8-1:0] name, output [63:0] a, output ok);
    begin
        common_rc = (fd == 0) ? 0 : $fscanf(fd, "%h", a);
        ok = (common_rc == 1);
        if (!ok) common_fail_file({name, " file ended early"});
    end
endtask

task common_read2(input integer fd, input [8*8-1:0] name, output [63:0] a, output [63:0] b,
                  output ok);
    begin
        common_rc = (fd == 0) ? 0 : $fscanf(fd, "%h %h", a, b);
        ok = (common_rc == 2);
        if (!ok) common_fail_file({name, " file ended early"});
    end
endtask

task common_read4(input integer fd, input [8*8-1:0] name,
                  output [63:0] a, output [63:0] b, output [63:0] c, output [63:0] d, output ok);
    begin
        common_rc = (fd == 0) ? 0 : $fscanf(fd, "%h %h %h %h", a, b, c, d);
        ok = (common_rc == 4);
        if (!ok) common_fail_file({name, " file ended early"});
    end
endtask

task common_watchdog;
    begin
        if (!finished && idle_clocks > common_watchdog_limit[31:0]) begin
            common_log(CODE_TIMEOUT, 0, 0, 0, {32'd0, common_watchdog_limit[31:0]}, {32'd0, cycles});
            common_finish(0, 0, 0);
        end
    end
endtask
