// cosim_source: a stream source that plays the words of one stimulus file.
//
// Part of the co-simulation harnesses (docs/cosim.md). The file is
// <cosim_dir>/h<ID>_<NAME>.hex: hexadecimal words separated by white space, each driven on
// `payload` (low W bits) with `valid` held high until the sink takes it (`valid & ready` at a
// clock edge). Before presenting each word the source may idle for a few clocks: it idles
// while a pseudo-random byte (xorshift32 from `seed`) is below `stall`, so stall = 0 never
// idles. `valid` never drops before a transfer, as amaranth.lib.stream requires. `stall` and
// `seed` must be stable from the clock `go` rises.
//
// Plusarg: +cosim_dir=DIR.
module cosim_source #(
    parameter W = 8,
    parameter ID = 0,
    parameter NAME = "x",
    parameter SALT = 1
) (
    input wire clk,
    input wire rst,
    input wire go,                  // start playing (after the harness has loaded the DUT)
    input wire [7:0] stall,         // idle probability per word, /256
    input wire [31:0] seed,
    output reg valid,
    output reg [W-1:0] payload,
    input wire ready,
    output reg [31:0] taken,        // words transferred
    output reg exhausted,           // the file has no more words
    output reg missing              // the file could not be opened
);
    reg [8*1024-1:0] dir;
    reg [8*1024-1:0] path;
    integer fd;
    integer rc;
    reg [63:0] word;
    reg [31:0] rng;
    reg seeded;

    initial begin
        valid = 1'b0;
        payload = {W{1'b0}};
        taken = 32'd0;
        exhausted = 1'b0;
        missing = 1'b0;
        seeded = 1'b0;
        rng = 32'd1;
        if (!$value$plusargs("cosim_dir=%s", dir)) dir = ".";
        $sformat(path, "%0s/h%0d_%0s.hex", dir, ID, NAME);
        fd = $fopen(path, "r");
        if (fd == 0) missing = 1'b1;
    end

    always @(posedge clk) begin
        if (stall != 8'd0) begin
            // xorshift32: a new pseudo-random word every clock.
            rng = rng ^ (rng << 13);
            rng = rng ^ (rng >> 17);
            rng = rng ^ (rng << 5);
        end
        if (rst) begin
            valid <= 1'b0;
        end else if (go && !missing) begin
            if (!seeded) begin
                rng = 32'h9E3779B9 ^ seed ^ (SALT * 32'h85EBCA6B);
                if (rng == 32'd0) rng = 32'd1;
                seeded = 1'b1;
            end
            if (!valid || ready) begin
                if (valid) taken <= taken + 32'd1;
                if (exhausted || (stall != 8'd0 && rng[7:0] < stall)) begin
                    valid <= 1'b0;
                end else begin
                    rc = $fscanf(fd, "%h", word);
                    if (rc == 1) begin
                        payload <= word[W-1:0];
                        valid <= 1'b1;
                    end else begin
                        exhausted <= 1'b1;
                        valid <= 1'b0;
                    end
                end
            end
        end
    end
endmodule
