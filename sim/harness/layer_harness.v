// layer_harness: drives one SSDFA layer (rtl/layer.py, top `ssdfa_layer`) from a golden set's
// files and checks every output bit for bit, on the fly, without Python.
//
// See docs/cosim.md for the file formats. All files are <cosim_dir>/h<ID>_<name>.hex, words
// in hexadecimal, separated by white space:
//
//   load  samples S, every E (1: read back after every sample, 0: only after the last), the
//         stall level L and its seed, the count C of host writes, then C times
//         "pe space addr data"
//   x     the S x F inputs, sample-major          (played by a cosim_source)
//   e     the S x M output errors, sample-major   (played by a cosim_source)
//   ya    per sample and neuron: y, then a (activation format, masked to its word)
//   rb    first the feedback table (N s words, neuron-major; hidden layers only), read back
//         once after loading; then per read-back: deltas (N), derivatives (N), LFSR states (N,
//         STOCH only) and the weights (N (F + 1), neuron-major, bias last); all masked to the
//         host data width
//
// The feedback table is the one PE space the layer never writes and the state read-backs
// never cover: reading it back after loading checks its host read path (the sign extension
// of a negative constant to the host word) against the model's values. The router's index
// table is write-only (rtl/layer.py, LayerSpace.INDEX): the routed words check it.
// The layer runs SAMPLE commands: back to back (E = 0) or one at a time with a read-back of
// the state through the host port after each (E = 1). The result file h<ID>_result.txt gets
// one line per mismatch (the first 32) and a summary line at the end:
//
//   mismatch CODE PASS SAMPLE INDEX EXPECTED ACTUAL     (values in hexadecimal)
//   summary CHECKS MISMATCHES CYCLES RUN_START RUN_END SAMPLES
//
// The load file's header also holds the stall level L (0..255: probability /256 of an idle
// clock before each x and e word and of a low y.ready) and its seed.
//
// Plusargs: +cosim_dir=DIR, +watchdog=CLOCKS (clocks without progress before the run is
// abandoned).
module layer_harness #(
    parameter ID = 0,
    parameter F = 1,         // fan-in
    parameter N = 1,         // neurons
    parameter P = 1,         // processing elements
    parameter K = 1,         // neurons per PE
    parameter M = 1,         // output errors
    parameter S_CONN = 1,    // connections s
    parameter ACT_W = 8,     // activation word
    parameter ERR_W = 8,     // error word
    parameter HD_W = 32,     // host data width
    parameter HA_W = 1,      // host address width
    parameter HP_W = 1,      // host PE-select width
    parameter CNT_W = 32,    // counter width
    parameter STOCH = 0,     // update rounding is STOCH: LFSR states are readable
    parameter FB_WORDS = 0   // feedback words per PE: K s for a hidden layer, 0 for the output layer
) (
    input wire clk,
    input wire rst,
    output reg finished,
    output reg failed,
    output reg sample_tick,
    // the layer's ports
    output reg [1:0] cmd_payload,
    output reg cmd_valid,
    input wire cmd_ready,
    input wire busy,
    input wire done,
    input wire [CNT_W-1:0] completed,
    output reg [HP_W-1:0] host_pe,
    output reg [2:0] host_space,
    output reg [HA_W-1:0] host_addr,
    output reg host_w_en,
    output reg [HD_W-1:0] host_w_data,
    output reg host_r_en,
    input wire [HD_W-1:0] host_r_data,
    output wire [ACT_W-1:0] x_payload,
    output wire x_valid,
    input wire x_ready,
    input wire [2*ACT_W-1:0] y_payload,
    input wire y_valid,
    output reg y_ready,
    output wire [ERR_W-1:0] e_payload,
    output wire e_valid,
    input wire e_ready,
    output reg clear_counters,
    input wire [CNT_W-1:0] errors_received,
    input wire [P*CNT_W-1:0] errors_delivered
);
    `include "cosim_common.vh"

    localparam [1:0] CMD_SAMPLE = 2'd3;
    localparam [31:0] ROWS = F + 1;
    localparam [31:0] Y_WORDS = N;

    // Read-back program: the spaces in order, and the words per PE of each.
    // Steps 0-3 after samples; step 4, alone, after loading (RB_FEEDBACK).
    localparam [2:0] RB_WEIGHT = 3'd3, RB_FEEDBACK = 3'd4;
    function [2:0] rb_space(input [2:0] step);
        case (step)
            3'd0: rb_space = SPACE_DELTA;
            3'd1: rb_space = SPACE_DERIVATIVE;
            3'd2: rb_space = SPACE_LFSR;
            RB_FEEDBACK: rb_space = SPACE_FEEDBACK;
            default: rb_space = SPACE_WEIGHT;
        endcase
    endfunction
    function [31:0] rb_count(input [2:0] step);
        rb_count = (step == RB_WEIGHT) ? K * ROWS : (step == RB_FEEDBACK) ? FB_WORDS : K;
    endfunction

    reg go;
    wire x_exhausted, e_exhausted, x_missing, e_missing;
    wire [31:0] x_taken, e_taken;
    cosim_source #(.W(ACT_W), .ID(ID), .NAME("x"), .SALT(1)) x_source (
        .clk(clk), .rst(rst), .go(go), .stall(common_stall), .seed(common_seed),
        .valid(x_valid), .payload(x_payload), .ready(x_ready), .taken(x_taken), .exhausted(x_exhausted), .missing(x_missing)
    );
    cosim_source #(.W(ERR_W), .ID(ID), .NAME("e"), .SALT(2)) e_source (
        .clk(clk), .rst(rst), .go(go), .stall(common_stall), .seed(common_seed ^ 32'h5bd1e995),
        .valid(e_valid), .payload(e_payload), .ready(e_ready), .taken(e_taken), .exhausted(e_exhausted), .missing(e_missing)
    );

    localparam [3:0] ST_HEADER = 4'd0, ST_LOAD = 4'd1, ST_CLEAR = 4'd2, ST_RUN = 4'd3,
                     ST_READ = 4'd4, ST_DRAIN = 4'd5, ST_COUNTERS = 4'd6, ST_END = 4'd7;
    reg [3:0] state;
    reg [31:0] samples, every, load_left;
    reg [31:0] issued, dones;
    reg [31:0] y_count;
    reg [31:0] run_start, run_end;
    // read-back: the next read to issue, and two pipeline stages to the compare
    reg [2:0] rd_step;
    reg [31:0] rd_pe, rd_addr;
    reg rd_active;
    reg verifying;  // reading the feedback table back after loading
    reg rb_v1, rb_v2;
    reg [7:0] rb_code1, rb_code2;
    reg [31:0] rb_index1, rb_index2, rb_sample1, rb_sample2;
    reg [63:0] t_pe, t_space, t_addr, t_data, exp_y, exp_a;
    integer p;
    reg ok;

    initial begin
        finished = 1'b0;
        failed = 1'b0;
        sample_tick = 1'b0;
        cmd_payload = CMD_SAMPLE;
        cmd_valid = 1'b0;
        host_pe = {HP_W{1'b0}};
        host_space = 3'd0;
        host_addr = {HA_W{1'b0}};
        host_w_en = 1'b0;
        host_w_data = {HD_W{1'b0}};
        host_r_en = 1'b0;
        y_ready = 1'b0;
        clear_counters = 1'b0;
        go = 1'b0;
        state = ST_HEADER;
        samples = 0; every = 0; load_left = 0; issued = 0; dones = 0; y_count = 0;
        run_start = 0; run_end = 0;
        rd_step = 3'd0; rd_pe = 0; rd_addr = 0; rd_active = 1'b0; verifying = 1'b0;
        rb_v1 = 1'b0; rb_v2 = 1'b0; rb_code1 = 8'd0; rb_code2 = 8'd0;
        rb_index1 = 0; rb_index2 = 0; rb_sample1 = 0; rb_sample2 = 0;
        common_open(ID, "layer");
    end

    task start_readback(input [2:0] first);
        begin
            rd_step = first;
            rd_pe = 0;
            rd_addr = 0;
            rd_active = 1'b1;
        end
    endtask

    // The next read-back step after `step` (the LFSR space exists only with STOCH).
    function [2:0] next_step(input [2:0] step);
        next_step = (step == 3'd1 && STOCH == 0) ? RB_WEIGHT : step + 3'd1;
    endfunction

    always @(posedge clk) begin
        sample_tick <= 1'b0;
        if (rst) begin
            cmd_valid <= 1'b0;
            host_w_en <= 1'b0;
            host_r_en <= 1'b0;
            y_ready <= 1'b0;
        end else if (!finished) begin
            common_clock();
            y_ready <= common_random_ready(0);

            // ---- y stream: every (y, a) against the expected pair, neuron order
            if (y_valid && y_ready) begin
                common_progress();
                if (y_count >= samples * Y_WORDS) begin
                    common_check(CODE_EXTRA, 0, y_count / Y_WORDS, y_count % Y_WORDS, 64'd0, 64'd1);
                end else begin
                    common_read2(fd_ya, "ya", exp_y, exp_a, ok);
                    if (ok) common_check(CODE_Y, 0, y_count / Y_WORDS, y_count % Y_WORDS,
                                 exp_y & mask(ACT_W), {{(64-ACT_W){1'b0}}, y_payload[ACT_W-1:0]});
                    if (ok) common_check(CODE_A, 0, y_count / Y_WORDS, y_count % Y_WORDS,
                                 exp_a & mask(ACT_W), {{(64-ACT_W){1'b0}}, y_payload[2*ACT_W-1:ACT_W]});
                end
                y_count = y_count + 1;
            end

            // ---- read-back pipeline: compare the word read two clocks ago
            if (rb_v2) begin
                common_read1(fd_rb, "rb", t_data, ok);
                if (ok) common_check(rb_code2, 0, rb_sample2, rb_index2, t_data & mask(HD_W),
                                 {{(64-HD_W){1'b0}}, host_r_data});
            end
            rb_v2 = rb_v1;
            rb_code2 = rb_code1;
            rb_index2 = rb_index1;
            rb_sample2 = rb_sample1;
            rb_v1 = 1'b0;

            // ---- the sequence
            case (state)
                ST_HEADER: begin
                    common_read1(fd_load, "load", t_data, ok);
                    samples = t_data[31:0];
                    common_read1(fd_load, "load", t_data, ok);
                    every = t_data[31:0];
                    common_read2(fd_load, "load", t_pe, t_addr, ok);
                    common_set_stall(t_pe, t_addr);
                    common_read1(fd_load, "load", t_data, ok);
                    load_left = t_data[31:0];
                    state <= ST_LOAD;
                end
                ST_LOAD: begin
                    if (load_left != 0) begin
                        common_read4(fd_load, "load", t_pe, t_space, t_addr, t_data, ok);
                        if (ok) begin
                            host_pe <= t_pe[HP_W-1:0];
                            host_space <= t_space[2:0];
                            host_addr <= t_addr[HA_W-1:0];
                            host_w_data <= t_data[HD_W-1:0];
                            host_w_en <= 1'b1;
                        end
                        load_left = load_left - 1;
                    end else begin
                        host_w_en <= 1'b0;
                        if (FB_WORDS != 0) begin
                            start_readback(RB_FEEDBACK);
                            verifying = 1'b1;
                            state <= ST_READ;
                        end else begin
                            clear_counters <= 1'b1;
                            state <= ST_CLEAR;
                        end
                    end
                end
                ST_CLEAR: begin
                    clear_counters <= 1'b0;
                    go <= 1'b1;
                    state <= ST_RUN;
                end
                ST_RUN: begin
                    if (cmd_valid && cmd_ready) begin
                        common_progress();
                        if (issued == 0) run_start = cycles;
                        issued = issued + 1;
                        if (every != 0 || issued == samples) cmd_valid <= 1'b0;
                    end else if (!cmd_valid && issued == dones && issued < samples) begin
                        cmd_valid <= 1'b1;
                    end
                    if (done) begin
                        common_progress();
                        dones = dones + 1;
                        run_end = cycles;
                        if (every != 0 || dones == samples) begin
                            if (every == 0) cmd_valid <= 1'b0;
                            start_readback(3'd0);
                            state <= ST_READ;
                        end else begin
                            sample_tick <= 1'b1;
                        end
                    end
                end
                ST_READ: begin
                    if (rd_active) begin
                        common_progress();
                        host_r_en <= 1'b1;
                        host_pe <= rd_pe[HP_W-1:0];
                        host_space <= rb_space(rd_step);
                        host_addr <= rd_addr[HA_W-1:0];
                        rb_v1 = 1'b1;
                        rb_code1 = space_code(rb_space(rd_step));
                        rb_index1 = rd_pe * rb_count(rd_step) + rd_addr;
                        rb_sample1 = verifying ? 32'hFFFFFFFF : dones - 1;  // none: after loading
                        if (rd_addr + 1 < rb_count(rd_step)) begin
                            rd_addr = rd_addr + 1;
                        end else begin
                            rd_addr = 0;
                            if (rd_pe + 1 < P) begin
                                rd_pe = rd_pe + 1;
                            end else begin
                                rd_pe = 0;
                                if (rd_step == RB_WEIGHT || rd_step == RB_FEEDBACK) rd_active = 1'b0;
                                else rd_step = next_step(rd_step);
                            end
                        end
                    end else begin
                        host_r_en <= 1'b0;
                        if (!rb_v2 && verifying) begin
                            verifying = 1'b0;
                            clear_counters <= 1'b1;
                            state <= ST_CLEAR;
                        end else if (!rb_v2) begin
                            sample_tick <= 1'b1;
                            state <= (dones < samples) ? ST_RUN : ST_DRAIN;
                        end
                    end
                end
                ST_DRAIN: begin
                    // The last activations may still be leaving the output buffer.
                    if (y_count >= samples * Y_WORDS) state <= ST_COUNTERS;
                end
                ST_COUNTERS: begin
                    common_check(CODE_COUNTER, 0, samples - 1, 0, samples * M, {32'd0, errors_received[31:0]});
                    common_check(CODE_COUNTER, 0, samples - 1, 1, samples, {32'd0, completed[31:0]});
                    for (p = 0; p < P; p = p + 1)
                        common_check(CODE_COUNTER, 0, samples - 1, 2 + p, samples * K * S_CONN,
                                     {32'd0, errors_delivered[p*CNT_W +: 32]});
                    common_check(CODE_COUNTER, 0, samples - 1, 2 + P, samples * F, {32'd0, x_taken});
                    common_check(CODE_COUNTER, 0, samples - 1, 3 + P, samples * M, {32'd0, e_taken});
                    state <= ST_END;
                end
                default: begin
                    common_finish(samples, run_start, run_end);
                end
            endcase
            if (x_missing || e_missing) common_fail_file("x or e stimulus file is missing");
            common_watchdog();
        end
    end
endmodule
