// Checks every kind of kernel of kernels.cu under the CPU emulation (emu.h) against plain
// reference loops written from the formats' definitions (FACTS.md), including grids smaller
// than the work (the grid-stride and clamped-y paths). Prints one line per check and "all ok";
// exits non-zero on a failure. Built and run by engine/tests/cuda_emu.rs.
#include "emu.h"
#include "kernels.cu"
static unsigned long long s=12345; static float rnd(){ s=s*6364136223846793005ULL+1442695040888963407ULL; return ((s>>40)/(float)(1<<24))*2-1; }
static f16_bits H(float f){ return f2h(f); } static float F(f16_bits h){ return h2f(h); }
static int fails=0;
static void check(const char* what, const std::vector<float>& got, const std::vector<float>& want, double tol){
  double num=0,den=0; for(size_t i=0;i<got.size();++i){ double d=got[i]-want[i]; num+=d*d; den+=want[i]*(double)want[i]; }
  double e = den>0? num/den : num; printf("%-28s nmse %.3e %s\n", what, e, e<=tol?"ok":"FAIL"); if(e>tol) fails++;
}
// reference q4_0 quantize of one block (FACTS.md)
static void q4(const float* x, unsigned char* b){ float amax=0,mx=0; for(int j=0;j<32;++j) if(fabsf(x[j])>amax){amax=fabsf(x[j]); mx=x[j];}
  float d=mx/-8, id=d?1/d:0; f16_bits h=H(d); memcpy(b,&h,2);
  for(int j=0;j<16;++j){ int a=std::min(15,(int)(x[j]*id+8.5f)), c=std::min(15,(int)(x[j+16]*id+8.5f)); b[2+j]=(unsigned char)(a|(c<<4)); } }
static float dq4(const unsigned char* row, int c){ const unsigned char* b=row+(c/32)*18; f16_bits h; memcpy(&h,b,2); int j=c%32; int v= j<16? (b[2+j]&15):(b[2+j-16]>>4); return F(h)*(v-8); }
int main(){
  // GET_ROWS q4_0
  { int rows=10,nc=64; std::vector<unsigned char> w(rows*nc/32*18); std::vector<float> x(rows*nc); for(auto&v:x)v=rnd();
    for(int b=0;b<rows*nc/32;++b) q4(&x[b*32],&w[b*18]);
    std::vector<int> ids={3,0,9,3}; std::vector<float> out(ids.size()*nc), want(out.size());
    long long n=ids.size(), ncl=nc, rb=nc/32*18; launch(1,1,256,[&]{ get_rows_q4_0(w.data(),ids.data(),out.data(),n,ncl,rb); });
    for(size_t i=0;i<ids.size();++i) for(int c=0;c<nc;++c) want[i*nc+c]=dq4(&w[ids[i]*rb],c);
    check("get_rows_q4_0", out, want, 0);
    std::fill(out.begin(),out.end(),0.f); launch(1,1,32,[&]{ get_rows_q4_0(w.data(),ids.data(),out.data(),n,ncl,rb); });
    check("get_rows_q4_0 grid-stride", out, want, 0); }
  // quantize + mul_mat_q4_0, N=6 (partial block of warps), M=11 (partial token tile)
  { int N=6,K=128,M=11; std::vector<unsigned char> w(N*K/32*18); std::vector<float> wx(N*K); for(auto&v:wx)v=rnd();
    for(int b=0;b<N*K/32;++b) q4(&wx[b*32],&w[b*18]);
    std::vector<float> x(M*K); for(auto&v:x)v=rnd(); std::vector<unsigned char> a(M*K/32*34);
    long long nb=M*K/32; launch((nb+7)/8,1,256,[&]{ quantize_q8_0(x.data(),a.data(),nb); });
    // reference quantization and dot
    std::vector<float> want(M*N), out(M*N);
    for(int t=0;t<M;++t) for(int n=0;n<N;++n){ double acc=0; for(int b=0;b<K/32;++b){
        const float* xs=&x[t*K+b*32]; float amax=0; for(int j=0;j<32;++j) amax=std::max(amax,fabsf(xs[j])); float d=amax/127, id=d?1/d:0;
        const unsigned char* ab=&a[(t*K/32+b)*34]; f16_bits hd; memcpy(&hd,ab,2);
        if (hd!=H(d)) { printf("q8 scale mismatch\n"); fails++; }
        int is=0; for(int j=0;j<32;++j){ int q=(int)roundf(xs[j]*id); if((signed char)ab[2+j]!=q){ printf("q8 value mismatch\n"); fails++; }
          const unsigned char* wb=&w[(n*K/32+b)*18]; int wq= j<16? (wb[2+j]&15)-8 : (wb[2+j-16]>>4)-8; is+=wq*q; }
        f16_bits hw; memcpy(&hw,&w[(n*K/32+b)*18],2); acc+= (double)F(hw)*F(H(d))*is; }
      want[t*N+n]=acc; }
    long long Nn=N,Kk=K,Mm=M; launch((N+3)/4,(M+7)/8,128,[&]{ mul_mat_q4_0(w.data(),a.data(),out.data(),Nn,Kk,Mm); });
    check("quantize+mul_mat_q4_0", out, want, 1e-10);
    std::fill(out.begin(),out.end(),0.f); launch((N+3)/4,1,128,[&]{ mul_mat_q4_0(w.data(),a.data(),out.data(),Nn,Kk,Mm); });
    check("mul_mat_q4_0 grid y < tiles", out, want, 1e-10); }
  // Q8_0 weights: GET_ROWS and MUL_MAT (activations quantized by the kernel)
  { int N=5,K=64,M=9; std::vector<unsigned char> w(N*K/32*34); std::vector<float> wx(N*K); for(auto&v:wx)v=rnd();
    for(int b=0;b<N*K/32;++b){ const float* xs=&wx[b*32]; float amax=0; for(int j=0;j<32;++j) amax=std::max(amax,fabsf(xs[j]));
      float d=amax/127, id=d?1/d:0; f16_bits h=H(d); memcpy(&w[b*34],&h,2); for(int j=0;j<32;++j) w[b*34+2+j]=(unsigned char)(signed char)roundf(xs[j]*id); }
    auto dq8=[&](int r,int c){ const unsigned char* b=&w[(r*K/32+c/32)*34]; f16_bits h; memcpy(&h,b,2); return F(h)*(float)(signed char)b[2+c%32]; };
    std::vector<int> ids={4,1}; std::vector<float> rows(ids.size()*K), want_rows(rows.size());
    long long n=ids.size(), ncl=K, rb=K/32*34; launch(1,1,64,[&]{ get_rows_q8_0(w.data(),ids.data(),rows.data(),n,ncl,rb); });
    for(size_t i=0;i<ids.size();++i) for(int c=0;c<K;++c) want_rows[i*K+c]=dq8(ids[i],c);
    check("get_rows_q8_0", rows, want_rows, 0);
    std::vector<float> x(M*K); for(auto&v:x)v=rnd(); std::vector<unsigned char> a(M*K/32*34);
    long long nb=M*K/32; launch(1,1,64,[&]{ quantize_q8_0(x.data(),a.data(),nb); });
    std::vector<float> out(M*N), want(M*N);
    for(int t=0;t<M;++t) for(int r=0;r<N;++r){ double acc=0; for(int b=0;b<K/32;++b){ const unsigned char* ab=&a[(t*K/32+b)*34]; const unsigned char* wb=&w[(r*K/32+b)*34];
        f16_bits ha,hw; memcpy(&ha,ab,2); memcpy(&hw,wb,2); int is=0; for(int j=0;j<32;++j) is+=(signed char)ab[2+j]*(signed char)wb[2+j]; acc+=(double)F(hw)*F(ha)*is; }
      want[t*N+r]=acc; }
    long long Nn=N,Kk=K,Mm=M; launch((N+3)/4,2,128,[&]{ mul_mat_q8_0(w.data(),a.data(),out.data(),Nn,Kk,Mm); });
    check("mul_mat_q8_0", out, want, 1e-10); }
  // mul_mat_f32 and ADD
  { int N=9,K=33,M=2; std::vector<float> w(N*K),x(M*K),out(M*N),want(M*N); for(auto&v:w)v=rnd(); for(auto&v:x)v=rnd();
    for(int t=0;t<M;++t) for(int n=0;n<N;++n){ double acc=0; for(int k=0;k<K;++k) acc+=(double)w[n*K+k]*x[t*K+k]; want[t*N+n]=acc; }
    long long Nn=N,Kk=K,Mm=M; launch((N+3)/4,1,128,[&]{ mul_mat_f32((const unsigned char*)w.data(),x.data(),out.data(),Nn,Kk,Mm); });
    check("mul_mat_f32", out, want, 1e-10);
    std::vector<float> y=out, sum(out.size()); for(size_t i=0;i<out.size();++i) sum[i]=out[i]+want[i];
    long long nn=out.size(); launch(1,1,32,[&]{ add(y.data(),want.data(),nn); });
    check("add", y, sum, 0); }
  // mul_mat_f16, K not a multiple of 32
  { int N=5,K=70,M=3; std::vector<f16_bits> w(N*K); for(auto&v:w)v=H(rnd()); std::vector<float> x(M*K); for(auto&v:x)v=rnd();
    std::vector<float> out(M*N), want(M*N);
    for(int t=0;t<M;++t) for(int n=0;n<N;++n){ double acc=0; for(int k=0;k<K;++k) acc+=(double)F(w[n*K+k])*F(H(x[t*K+k])); want[t*N+n]=acc; }
    long long Nn=N,Kk=K,Mm=M; launch((N+3)/4,1,128,[&]{ mul_mat_f16((const unsigned char*)w.data(),x.data(),out.data(),Nn,Kk,Mm); });
    check("mul_mat_f16", out, want, 1e-10); }
  // rms_norm
  { int R=3,C=100; std::vector<float> x(R*C),w(C),y(R*C),want(R*C); for(auto&v:x)v=rnd(); for(auto&v:w)v=rnd();
    for(int r=0;r<R;++r){ double ss=0; for(int c=0;c<C;++c) ss+=x[r*C+c]*(double)x[r*C+c]; double sc=1/sqrt(ss/C+1e-5); for(int c=0;c<C;++c) want[r*C+c]=x[r*C+c]*sc*w[c]; }
    long long Rr=R,Cc=C; launch(R,1,128,[&]{ rms_norm(x.data(),w.data(),y.data(),Rr,Cc,1e-5f); });
    check("rms_norm", y, want, 1e-12);
    std::fill(y.begin(),y.end(),0.f); launch(2,1,128,[&]{ rms_norm(x.data(),w.data(),y.data(),Rr,Cc,1e-5f); });
    check("rms_norm grid < rows", y, want, 1e-12); }
  // rope normal
  { int T=2,Hh=3,D=8,NR=6,P0=5; std::vector<float> th(NR/2); for(int i=0;i<NR/2;++i) th[i]=powf(10000.f,-2.f*i/NR);
    std::vector<float> x(T*Hh*D); for(auto&v:x)v=rnd(); auto want=x;
    for(int t=0;t<T;++t) for(int h=0;h<Hh;++h) for(int i=0;i<NR/2;++i){ float* v=&want[t*Hh*D+h*D+2*i]; double an=(double)(P0+t)*th[i]; double a=v[0],b=v[1]; v[0]=a*cos(an)-b*sin(an); v[1]=a*sin(an)+b*cos(an); }
    long long a0=T,a1=Hh*D,a2=Hh,a3=D,a4=NR,a5=P0; launch(1,1,256,[&]{ rope_normal(x.data(),th.data(),a0,a1,a2,a3,a4,a5); });
    check("rope_normal", x, want, 1e-12); }
  // attention, f16 cache, GQA
  { int T=3,NH=4,NKV=2,D=16,P0=2,NC=8, KW=NKV*D, NKVP=P0+T; std::vector<float> q(T*NH*D), k(NKVP*KW), v(NKVP*KW); for(auto&z:q)z=rnd(); for(auto&z:k)z=rnd(); for(auto&z:v)z=rnd();
    std::vector<f16_bits> kc(NC*KW), vc(NC*KW); long long nn=NKVP*KW, at=0;
    launch(1,1,256,[&]{ kv_store_f16(k.data(),kc.data(),at,nn); }); launch(1,1,256,[&]{ kv_store_f16(v.data(),vc.data(),at,nn); });
    std::vector<float> out(T*NH*D), want(T*NH*D), sc(T*NH*NC);
    for(int t=0;t<T;++t) for(int h=0;h<NH;++h){ int g=h/(NH/NKV); int nk=P0+t+1; std::vector<double> s(nk); double mx=-1e30;
      for(int p=0;p<nk;++p){ double a=0; for(int d=0;d<D;++d) a+=q[(t*NH+h)*D+d]*(double)F(H(k[p*KW+g*D+d])); s[p]=a/sqrt((double)D); mx=std::max(mx,s[p]); }
      double z=0; for(auto&e:s){ e=exp(e-mx); z+=e; }
      for(int d=0;d<D;++d){ double o=0; for(int p=0;p<nk;++p) o+=s[p]/z*F(H(v[p*KW+g*D+d])); want[(t*NH+h)*D+d]=o; } }
    long long a[7]={T,NH,NKV,D,KW,P0,NC}; float scale=1.f/sqrtf((float)D);
    launch(T*NH,1,128,[&]{ attention_f16_f16(q.data(),kc.data(),vc.data(),out.data(),sc.data(),a[0],a[1],a[2],a[3],a[4],a[5],a[6],scale); });
    check("attention_f16_f16", out, want, 1e-10);
    std::fill(out.begin(),out.end(),0.f); launch(5,1,128,[&]{ attention_f16_f16(q.data(),kc.data(),vc.data(),out.data(),sc.data(),a[0],a[1],a[2],a[3],a[4],a[5],a[6],scale); });
    check("attention grid < jobs", out, want, 1e-10);
    // f32 cache: the same attention without the f16 rounding of K and V.
    std::vector<float> kc32(NC*KW), vc32(NC*KW);
    launch(1,1,256,[&]{ kv_store_f32(k.data(),kc32.data(),at,nn); }); launch(1,1,256,[&]{ kv_store_f32(v.data(),vc32.data(),at,nn); });
    for(int t=0;t<T;++t) for(int h=0;h<NH;++h){ int g=h/(NH/NKV); int nk=P0+t+1; std::vector<double> s(nk); double mx=-1e30;
      for(int p=0;p<nk;++p){ double a2=0; for(int d=0;d<D;++d) a2+=q[(t*NH+h)*D+d]*(double)k[p*KW+g*D+d]; s[p]=a2/sqrt((double)D); mx=std::max(mx,s[p]); }
      double z=0; for(auto&e:s){ e=exp(e-mx); z+=e; }
      for(int d=0;d<D;++d){ double o=0; for(int p=0;p<nk;++p) o+=s[p]/z*v[p*KW+g*D+d]; want[(t*NH+h)*D+d]=o; } }
    launch(T*NH,1,128,[&]{ attention_f32_f32(q.data(),kc32.data(),vc32.data(),out.data(),sc.data(),a[0],a[1],a[2],a[3],a[4],a[5],a[6],scale); });
    check("attention_f32_f32", out, want, 1e-10); }
  // swiglu, add
  { int n=300; std::vector<float> g(n),u(n); for(auto&z:g)z=rnd(); for(auto&z:u)z=rnd(); std::vector<float> want(n), x=g;
    for(int i=0;i<n;++i) want[i]=g[i]/(1+exp(-g[i]))*u[i]; long long nn=n; launch(2,1,256,[&]{ swiglu(x.data(),u.data(),nn); });
    check("swiglu", x, want, 1e-12); }
  printf("%s\n", fails? "FAILURES":"all ok"); return fails!=0;
}
