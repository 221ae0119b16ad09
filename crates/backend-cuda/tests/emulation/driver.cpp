// Runs one path of melkit's CUDA kernels on a CPU (see shim.h): reads the inputs from the files
// in argv[2] (raw arrays written by the test), writes out.bin there. argv[1]: "fused" or
// "cufft" (cuFFT's R2C done here by a direct DFT in long double). The fused kernel runs with 4
// threads per block (its loops stride by blockDim, so any count gives the same numbers); the
// others, which have no barrier, with one thread walking the grid.

cplx shared[1 << 15];

template <typename T>
static std::vector<T> load(const std::string& dir, const char* name) {
    std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        std::perror(path.c_str());
        std::exit(2);
    }
    std::vector<T> v;
    T x;
    while (std::fread(&x, sizeof(T), 1, f) == 1) {
        v.push_back(x);
    }
    std::fclose(f);
    return v;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        return 2;
    }
    const std::string path = argv[1], dir = argv[2];
    auto signal = load<float>(dir, "signal.bin");
    auto starts = load<unsigned>(dir, "starts.bin");
    auto frame_index = load<int>(dir, "frame_index.bin");
    auto window = load<real>(dir, "window.bin");
    auto twiddles = load<cplx>(dir, "twiddles.bin");
    auto spans = load<unsigned>(dir, "spans.bin");
    auto weights = load<real>(dir, "weights.bin");
    const unsigned frames = (unsigned)starts.size() * N_SHORT * N_FRAMES;
    std::vector<float> out((size_t)frames * N_MELS, NAN);
    if (path == "fused") {
        launch((frames + 1) / 2, 4, [&] {
            fused(signal.data(), starts.data(), frame_index.data(), window.data(), twiddles.data(),
                  spans.data(), weights.data(), out.data(), frames);
        });
    } else {
        std::vector<real> framed((size_t)frames * N);
        launch((unsigned)framed.size(), 1, [&] {
            frame_window(signal.data(), starts.data(), frame_index.data(), window.data(),
                         framed.data(), frames);
        });
        std::vector<cplx> spectrum((size_t)frames * BINS);
        const long double pi = 3.141592653589793238462643383279502884L;
        std::vector<long double> c(N), s(N);
        for (unsigned j = 0; j < N; ++j) {
            c[j] = cosl(-2 * pi * j / N);
            s[j] = sinl(-2 * pi * j / N);
        }
        for (size_t f = 0; f < frames; ++f) {
            for (unsigned k = 0; k < BINS; ++k) {
                long double re = 0, im = 0;
                for (unsigned n = 0, j = 0; n < N; ++n, j = (j + k) % N) {
                    re += framed[f * N + n] * c[j];
                    im += framed[f * N + n] * s[j];
                }
                spectrum[f * BINS + k].x = (real)re;
                spectrum[f * BINS + k].y = (real)im;
            }
        }
        launch((unsigned)out.size(), 1, [&] {
            power_mel(spectrum.data(), spans.data(), weights.data(), out.data(), frames);
        });
    }
    FILE* f = std::fopen((dir + "/out.bin").c_str(), "wb");
    std::fwrite(out.data(), sizeof(float), out.size(), f);
    std::fclose(f);
    return 0;
}
