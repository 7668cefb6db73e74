// pe_harness: drives one NeuronPE (rtl/neuron_pe.py, top `neuron_pe`) through a layer's golden
// set, one PE's worth of neurons at a time, and checks every output bit for bit on the fly.
//
// The set's N neurons are run in PASSES = P passes of K neurons (the neurons of PE p of the
// layer); each pass loads the PE, runs every sample as FORWARD, ERROR and UPDATE commands and
// reads the state back. Files (<cosim_dir>/h<ID>_<name>.hex, hexadecimal words):
//
//   load  samples S, every E, stall level L and its seed; then per pass the count C of host
//         writes and C times "0 space addr data"
//   x     per pass and sample: the F inputs twice (FORWARD, then UPDATE)
//   e     per pass and sample: the K s error words the router would deliver, neuron-major
//   ya    per pass, sample and neuron: y, then a
//   rb    per pass: first the feedback table (K s words, hidden layers only), read back once
//         after loading; then per read-back: deltas (K), derivatives (K), LFSR states (K,
//         STOCH only), weights (K (F + 1)); all masked to the host data width
//
// The feedback table is the one space the phases never write and the state read-backs never
// cover: reading it back after loading checks its host read path (the sign extension of a
// negative constant to the host word) against the model's values.
// The result file has the layer harness's format (layer_harness.v); PASS is the pass (the
// layer's PE), and indices count within it.
module pe_harness #(
    parameter ID = 0,
    parameter F = 1,         // fan-in
    parameter K = 1,         // neurons per PE
    parameter PASSES = 1,    // the layer's PEs, run one after another
    parameter S_CONN = 1,    // connections s
    parameter ACT_W = 8,
    parameter ERR_W = 8,
    parameter HD_W = 32,
    parameter HA_W = 1,
    parameter STOCH = 0,
    parameter FB_WORDS = 0   // feedback words per PE: K s for a hidden layer, 0 for the output layer
) (
    input wire clk,
    input wire rst,
    output reg finished,
    output reg failed,
    output reg sample_tick,
    output reg [1:0] cmd_payload,
    output reg cmd_valid,
    input wire cmd_ready,
    input wire busy,
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
    input wire e_ready
);
    `include "cosim_common.vh"

    localparam [31:0] ROWS = F + 1;
    localparam [1:0] CMD_UPDATE = 2'd2;

    // Read-back steps 0-3 after samples; step 4, alone, after loading (RB_FEEDBACK).
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
    function [2:0] next_step(input [2:0] step);
        next_step = (step == 3'd1 && STOCH == 0) ? RB_WEIGHT : step + 3'd1;
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

    localparam [3:0] ST_HEADER = 4'd0, ST_PASS = 4'd1, ST_LOAD = 4'd2, ST_RUN = 4'd3,
                     ST_WAIT = 4'd4, ST_READ = 4'd5, ST_DRAIN = 4'd6, ST_COUNTERS = 4'd7,
                     ST_END = 4'd8;
    reg [3:0] state;
    reg [31:0] samples, every, load_left, pass_;
    reg [31:0] issued;          // commands transferred in this pass
    reg [31:0] y_count;         // (y, a) words over all passes
    reg [31:0] run_start, run_end;
    reg [2:0] rd_step;
    reg [31:0] rd_addr;
    reg rd_active;
    reg verifying;              // reading the feedback table back after loading
    reg rb_v1, rb_v2;
    reg [7:0] rb_code1, rb_code2;
    reg [31:0] rb_index1, rb_index2, rb_sample1, rb_sample2, rb_pass1, rb_pass2;
    reg [63:0] t_pe, t_space, t_addr, t_data, exp_y, exp_a;
    reg [31:0] phase3;
    reg ok;

    initial begin
        finished = 1'b0;
        failed = 1'b0;
        sample_tick = 1'b0;
        phase3 = 0;
        cmd_payload = 2'd0;
        cmd_valid = 1'b0;
        host_space = 3'd0;
        host_addr = {HA_W{1'b0}};
        host_w_en = 1'b0;
        host_w_data = {HD_W{1'b0}};
        host_r_en = 1'b0;
        y_ready = 1'b0;
        go = 1'b0;
        state = ST_HEADER;
        samples = 0; every = 0; load_left = 0; pass_ = 0; issued = 0; y_count = 0;
        run_start = 0; run_end = 0;
        rd_step = 3'd0; rd_addr = 0; rd_active = 1'b0; verifying = 1'b0;
        rb_v1 = 1'b0; rb_v2 = 1'b0; rb_code1 = 8'd0; rb_code2 = 8'd0;
        rb_index1 = 0; rb_index2 = 0; rb_sample1 = 0; rb_sample2 = 0; rb_pass1 = 0; rb_pass2 = 0;
        common_open(ID, "pe");
    end

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

            // ---- y stream, K words per sample and pass
            if (y_valid && y_ready) begin
                common_progress();
                if (y_count >= PASSES * samples * K) begin
                    common_check(CODE_EXTRA, y_count / (samples * K), (y_count / K) % samples, y_count % K,
                                 64'd0, 64'd1);
                end else begin
                    common_read2(fd_ya, "ya", exp_y, exp_a, ok);
                    if (ok) common_check(CODE_Y, y_count / (samples * K), (y_count / K) % samples, y_count % K,
                                         exp_y & mask(ACT_W), {{(64-ACT_W){1'b0}}, y_payload[ACT_W-1:0]});
                    if (ok) common_check(CODE_A, y_count / (samples * K), (y_count / K) % samples, y_count % K,
                                         exp_a & mask(ACT_W),
                                         {{(64-ACT_W){1'b0}}, y_payload[2*ACT_W-1:ACT_W]});
                end
                y_count = y_count + 1;
            end

            // ---- read-back pipeline
            if (rb_v2) begin
                common_read1(fd_rb, "rb", t_data, ok);
                if (ok) common_check(rb_code2, rb_pass2, rb_sample2, rb_index2, t_data & mask(HD_W),
                                     {{(64-HD_W){1'b0}}, host_r_data});
            end
            rb_v2 = rb_v1;
            rb_code2 = rb_code1;
            rb_index2 = rb_index1;
            rb_sample2 = rb_sample1;
            rb_pass2 = rb_pass1;
            rb_v1 = 1'b0;

            case (state)
                ST_HEADER: begin
                    common_read1(fd_load, "load", t_data, ok);
                    samples = t_data[31:0];
                    common_read1(fd_load, "load", t_data, ok);
                    every = t_data[31:0];
                    common_read2(fd_load, "load", t_pe, t_addr, ok);
                    common_set_stall(t_pe, t_addr);
                    go <= 1'b1;
                    state <= ST_PASS;
                end
                ST_PASS: begin
                    common_read1(fd_load, "load", t_data, ok);
                    load_left = t_data[31:0];
                    issued = 0;
                    state <= ST_LOAD;
                end
                ST_LOAD: begin
                    if (load_left != 0) begin
                        common_read4(fd_load, "load", t_pe, t_space, t_addr, t_data, ok);
                        if (ok) begin
                            host_space <= t_space[2:0];
                            host_addr <= t_addr[HA_W-1:0];
                            host_w_data <= t_data[HD_W-1:0];
                            host_w_en <= 1'b1;
                        end
                        load_left = load_left - 1;
                    end else begin
                        host_w_en <= 1'b0;
                        if (FB_WORDS != 0) begin
                            rd_step = RB_FEEDBACK;
                            rd_addr = 0;
                            rd_active = 1'b1;
                            verifying = 1'b1;
                            state <= ST_READ;
                        end else begin
                            if (pass_ == 0) run_start = cycles;
                            state <= ST_RUN;
                        end
                    end
                end
                ST_RUN: begin
                    // FORWARD, ERROR, UPDATE per sample; each waits for the PE to be idle.
                    if (cmd_valid && cmd_ready) begin
                        common_progress();
                        cmd_valid <= 1'b0;
                        issued = issued + 1;
                        if (cmd_payload == CMD_UPDATE && (every != 0 || issued == 3 * samples))
                            state <= ST_WAIT;
                    end else if (!cmd_valid && cmd_ready && !busy) begin
                        phase3 = issued % 3;
                        cmd_payload <= phase3[1:0];
                        cmd_valid <= 1'b1;
                    end
                end
                ST_WAIT: begin
                    if (cmd_ready && !busy) begin
                        rd_step = 3'd0;
                        rd_addr = 0;
                        rd_active = 1'b1;
                        state <= ST_READ;
                    end
                end
                ST_READ: begin
                    if (rd_active) begin
                        common_progress();
                        host_r_en <= 1'b1;
                        host_space <= rb_space(rd_step);
                        host_addr <= rd_addr[HA_W-1:0];
                        rb_v1 = 1'b1;
                        rb_code1 = space_code(rb_space(rd_step));
                        rb_index1 = rd_addr;
                        rb_sample1 = verifying ? 32'hFFFFFFFF : issued / 3 - 1;  // none: after loading
                        rb_pass1 = pass_;
                        if (rd_addr + 1 < rb_count(rd_step)) begin
                            rd_addr = rd_addr + 1;
                        end else begin
                            rd_addr = 0;
                            if (rd_step == RB_WEIGHT || rd_step == RB_FEEDBACK) rd_active = 1'b0;
                            else rd_step = next_step(rd_step);
                        end
                    end else begin
                        host_r_en <= 1'b0;
                        if (!rb_v2 && verifying) begin
                            verifying = 1'b0;
                            if (pass_ == 0) run_start = cycles;
                            state <= ST_RUN;
                        end else if (!rb_v2) begin
                            sample_tick <= 1'b1;
                            if (issued < 3 * samples) begin
                                state <= ST_RUN;
                            end else if (pass_ + 1 < PASSES) begin
                                pass_ = pass_ + 1;
                                state <= ST_PASS;
                            end else begin
                                run_end = cycles;
                                state <= ST_DRAIN;
                            end
                        end
                    end
                end
                ST_DRAIN: begin
                    if (y_count >= PASSES * samples * K) state <= ST_COUNTERS;
                end
                ST_COUNTERS: begin
                    common_check(CODE_COUNTER, PASSES - 1, samples - 1, 0, PASSES * samples * 2 * F, {32'd0, x_taken});
                    common_check(CODE_COUNTER, PASSES - 1, samples - 1, 1, PASSES * samples * K * S_CONN,
                                 {32'd0, e_taken});
                    state <= ST_END;
                end
                default: begin
                    common_finish(PASSES * samples, run_start, run_end);
                end
            endcase
            if (x_missing || e_missing) common_fail_file("x or e stimulus file is missing");
            common_watchdog();
        end
    end
endmodule
